from rnn_dissect.cli import entry

entry()
