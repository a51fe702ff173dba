// The tiny page every example serves at `/`: it loads the browser client from epush's base
// path, listens on the push ID the app minted for this view, and asks the app to notify.
export function page(framework, pushId) {
  return `<!doctype html>
<meta charset="utf-8">
<title>epush in ${framework}</title>
<h1>epush embedded in ${framework}</h1>
<p>status: <b id="status">…</b> <button id="notify">notify everyone</button></p>
<ul id="log"></ul>
<script src="/push-server/epush.js"></script>
<script>
  // The base URL is the mount point: the client appends /push/ws, /push/sse, /push/listen.
  const push = EPush.connect({ url: '/push-server' });
  push.on('status', (s) => (document.getElementById('status').textContent = s));
  push.listen(${JSON.stringify(pushId)}, (n) => {
    const li = document.createElement('li');
    li.textContent = JSON.stringify(n.payload);
    document.getElementById('log').prepend(li);
    console.log('epush-example-received', JSON.stringify(n));
  });
  document.getElementById('notify').onclick = () => fetch('/notify', { method: 'POST' });
</script>
`;
}
