/**
 * The sandbox's hosted Connect page. Benji's real page signs the user in to Benji and asks them to
 * approve the partner; this one has the approve step only. On approval it hands the exchange token
 * to the window that opened it with `postMessage`, as Benji's SDK hands it to `onSuccess`, and only
 * to the origins configured for the account (Pilot's allowed origins): never to `*`.
 */
export function hostedConnectPage({ known, frontendOrigins }: { known: boolean; frontendOrigins: readonly string[] }): string {
  // Inside a <script>: `<` escaped so no configured value can close the element.
  const origins = JSON.stringify(frontendOrigins).replace(/</g, '\\u003c');
  const body = known
    ? `<p>Reward Cookies wants to connect to your Benji account.</p>
<button id="approve" type="button">Approve</button> <button id="cancel" type="button">Cancel</button>
<p id="status" role="status"></p>`
    : `<p id="status" role="status">This connect link is not valid (it was used already, or never issued).</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Benji Connect (sandbox)</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}button{font-size:1rem;padding:.5rem 1rem}</style>
</head><body><h1>Benji Connect <small>(sandbox)</small></h1>
${body}
<script>
const origins = ${origins};
const status = document.getElementById('status');
function tell(message) {
  if (!window.opener) { status.textContent = 'Open this page from the app that asked to connect.'; return false; }
  for (const origin of origins) window.opener.postMessage(message, origin);
  return true;
}
document.getElementById('approve')?.addEventListener('click', async () => {
  const connectToken = new URLSearchParams(location.search).get('connect_token');
  const reply = await fetch('/hosted/approve', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ connect_token: connectToken }) });
  if (!reply.ok) { status.textContent = 'Benji could not approve this connection.'; return; }
  const { exchange_token: exchangeToken, user_id: userId } = await reply.json();
  if (tell({ type: 'benji:connect:success', exchangeToken, metadata: { userId } })) { status.textContent = 'Connected. You can close this window.'; window.close(); }
});
document.getElementById('cancel')?.addEventListener('click', () => { if (tell({ type: 'benji:connect:cancel' })) window.close(); });
</script></body></html>`;
}
