// The BPTT walkthrough's step-through (render/bptt_walkthrough.py): one frame at a time,
// Prev / Next and the arrow keys; text written with textContent only.
(function(){
const D=JSON.parse(document.getElementById('walkthrough-data').textContent);
const F=D.frames;let i=0,zoom=1;
const el=id=>document.getElementById(id);
function fmt(v){if(v===null)return'null';if(typeof v==='number'){let s=Number(v.toPrecision(6)).toString();
return s==='-0'?'0':s;}return '['+v.map(fmt).join(', ')+']';}
function row(tb,role,label,text,title){const tr=document.createElement('tr');
const a=document.createElement('td');a.textContent=role;a.className='role r-'+role;
const b=document.createElement('td');b.textContent=label;
const c=document.createElement('td');c.textContent=text;if(title)c.title=title;c.className='v';
tr.append(a,b,c);tb.append(tr);}
// an input or target holds a character's index: show the character too
function chars(n,v){if(!Array.isArray(v))return fmt(v);
const flat=v.flat(Infinity);return flat.map(k=>JSON.stringify(D.vocab[k]??'?')+' (index '+k+')').join(', ');}
function num(n,field){const v=n[field];
if(v!==null&&v!==undefined)return (field==='value'&&(n.kind==='input'||n.kind==='target')&&n.op==='leaf'&&D.vocab&&n.name!=='1/T')?chars(n,v):fmt(v);
const nm=n[field+'_norm'];return nm===null?'—':'shape '+(n.shape.join('×')||'scalar')+'  ‖·‖='+fmt(nm);}
function dL(name){return /[ ⊙·()\/]/.test(name)?'dL/d('+name+')':'dL/d'+name;}
function label(n,id,fwd){return (fwd?n.name:dL(n.name))+'  ('+id+')';}
function render(){const f=F[i];const fwd=f.phase==='forward';
document.body.dataset.phase=f.phase;
el('frame-count').textContent='frame '+(i+1)+' / '+F.length;
el('frame-title').textContent=(fwd?'Forward':'Backward')+(f.t===null?' · total loss':' · t = '+f.t)
+(f.layer===null?(f.part==='head'?' · head':''):' · layer '+f.layer);
el('frame-caption').textContent=D.captions[i];
const tb=el('frame-rows');tb.textContent='';const field=fwd?'value':'grad';
for(const id of f.computed){const n=D.nodes[id];row(tb,'computed',label(n,id,fwd),num(n,field));}
for(const id of f.reads){const n=D.nodes[id];row(tb,'reads',label(n,id,fwd),num(n,field));}
for(const id of f.carries){const n=D.nodes[id];let t;
if(fwd)t=num(n,'value');else{const s=f.sent&&f.sent[id];t=s===undefined?'—':(s===null?'(large; see dissection.json)':fmt(s));}
row(tb,'carries',label(n,id,fwd)+(fwd?'':' ← sent'),t);}
for(const c of f.cache){const e=D.cache[c];row(tb,'cache',c,e?((e.shape.length?'shape '+e.shape.join('×'):'scalar')+', '+e.bytes+' bytes'):'');}
if(f.params.length)row(tb,'params',f.params.join(', '),fwd?'read':'gradient term added');
if(f.cut)row(tb,'carries','truncation cut','the carried gradient stops here');
const on={};for(const id of f.computed)on[id]='hl-computed';
for(const id of f.reads)on[id]=on[id]||'hl-reads';for(const id of f.carries)on[id]=on[id]||'hl-carries';
document.querySelectorAll('#graph g.node').forEach(g=>{g.classList.remove('hl-computed','hl-reads','hl-carries','hl-dim');
if(g.id==='legend')return;g.classList.add(on[g.id]||'hl-dim');});
const box=el('graph'),hot=box&&box.querySelector('g.node.hl-computed');
if(hot){const r=hot.getBoundingClientRect(),c=box.getBoundingClientRect();
box.scrollLeft+=r.left-c.left-(c.width-r.width)/2;box.scrollTop+=r.top-c.top-(c.height-r.height)/2;}
el('prev').disabled=i===0;el('next').disabled=i===F.length-1;
document.body.dataset.frame=String(i);}
function go(k){i=Math.max(0,Math.min(F.length-1,k));render();}
el('prev').addEventListener('click',()=>go(i-1));el('next').addEventListener('click',()=>go(i+1));
// the gradient lines of the graph's cards: hidden while stepping forward (not computed yet)
// (a card lists the gradient last: the "∇" label and every text after it)
document.querySelectorAll('#graph text').forEach(t=>{if(t.textContent.trim()==='∇'){
let s=t;while(s){if(s.tagName==='text')s.classList.add('grad');s=s.nextElementSibling;}}});
const svg=document.querySelector('#graph svg');
if(svg){const w0=svg.getBoundingClientRect().width;
function setZoom(z){zoom=Math.max(0.25,Math.min(2,z));svg.style.width=(w0*zoom)+'px';svg.style.height='auto';
el('zoom-level').textContent=Math.round(zoom*100)+'%';render();}
el('zoom-out').addEventListener('click',()=>setZoom(zoom/1.25));el('zoom-in').addEventListener('click',()=>setZoom(zoom*1.25));}
document.addEventListener('keydown',e=>{if(e.key==='ArrowRight'){go(i+1);e.preventDefault();}
else if(e.key==='ArrowLeft'){go(i-1);e.preventDefault();}});
if(F.length)render();
})();
