"""The explorer's local server (:mod:`.server`) and notebook widget (:mod:`.widget`)."""
