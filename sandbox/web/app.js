// The example app's front end: plain JavaScript, no framework, no build step. It signs a user in
// with the app's own identity provider, then links their Benji account through the token broker.
// The browser only ever holds the app's user token and Benji's one-time tokens (connect and
// exchange); Benji's user tokens stay in the broker.

const { brokerUrl } = await (await fetch('/config.json')).json();

// The signed-in user's JWT. In memory only: not in localStorage or sessionStorage, where any script
// on the origin could read it long after the user left. A reload signs the user out.
let userToken = null;

const who = document.getElementById('who');
const linkStatus = document.getElementById('link-status');
const connectButton = document.getElementById('connect');
const unlinkButton = document.getElementById('unlink');
const errorText = document.getElementById('error');

/** Calls the broker's public door as the signed-in user; answers the JSON body, or throws with the problem's detail. */
async function callBroker(method, path, body) {
  const headers = { authorization: `Bearer ${userToken}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let reply;
  try {
    reply = await fetch(`${brokerUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    // No answer at all: the network, or a CORS refusal (the broker's CORS_ORIGINS must list this origin).
    throw new Error('The broker could not be reached.');
  }
  if (reply.status === 204) return null;
  const data = await reply.json().catch(() => null);
  // Errors are problem+json: `detail` is written for people, `code` for programs.
  if (!reply.ok) throw new Error(data?.detail ?? `The broker answered ${reply.status}.`);
  return data;
}

function showLink(link) {
  if (link.linked) {
    linkStatus.textContent = `Linked as Benji user ${link.benjiUserId} (since ${new Date(link.linkedAt).toLocaleString()}).`;
  } else {
    linkStatus.textContent = 'Not linked to Benji.';
  }
  linkStatus.classList.toggle('linked', link.linked);
  connectButton.disabled = link.linked;
  unlinkButton.disabled = !link.linked;
}

async function signIn(user) {
  const reply = await fetch('/sign-in', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  if (!reply.ok) throw new Error('Signing in failed.');
  userToken = (await reply.json()).token;
  who.textContent = `Signed in as ${user[0].toUpperCase()}${user.slice(1)}.`;
  linkStatus.textContent = 'Checking your Benji link…';
  try {
    showLink(await callBroker('GET', '/v1/benji/link'));
  } catch (error) {
    linkStatus.textContent = 'Your Benji link could not be checked.';
    throw error;
  }
}

/**
 * Waits for Benji's page in `popup` to hand over an exchange token. Only a message from Benji's
 * origin, sent by the window this page opened, counts: any other site could post one.
 */
function waitForBenji(popup, benjiOrigin) {
  return new Promise((resolve, reject) => {
    let settled = false;
    function finish(settle) {
      if (settled) return;
      settled = true;
      window.removeEventListener('message', onMessage);
      clearInterval(watchClosed);
      settle();
    }
    function onMessage(event) {
      if (event.origin !== benjiOrigin || event.source !== popup) return;
      const { type, exchangeToken } = event.data ?? {};
      if (type === 'benji:connect:success' && typeof exchangeToken === 'string') finish(() => resolve(exchangeToken));
      if (type === 'benji:connect:cancel') finish(() => reject(new Error('Connecting to Benji was cancelled.')));
    }
    // Nothing tells the opener that the user closed the popup: look. Benji's page closes itself
    // right after posting, so give its message a moment to arrive before calling it abandoned.
    const watchClosed = setInterval(() => {
      if (popup.closed) setTimeout(() => finish(() => reject(new Error('The Benji window was closed before connecting.'))), 1000);
    }, 500);
    window.addEventListener('message', onMessage);
  });
}

async function connectBenji() {
  // Opened at once, while the click still counts as the user's: browsers block a window.open that
  // comes after an await. Not `noopener`: Benji's page answers through window.opener.
  const popup = window.open('about:blank', 'benji-connect', 'popup,width=480,height=640');
  if (popup === null) throw new Error('Allow pop-ups for this page to connect Benji.');
  try {
    const { hostedUrl } = await callBroker('POST', '/v1/benji/connect-token', { mode: 'connect' });
    if (hostedUrl === null) throw new Error('Benji’s hosted connect is not enabled for this account.');
    popup.location.href = hostedUrl;
    const exchangeToken = await waitForBenji(popup, new URL(hostedUrl).origin);
    linkStatus.textContent = 'Linking your Benji account…';
    try {
      showLink(await callBroker('POST', '/v1/benji/exchange', { exchangeToken }));
    } catch (error) {
      linkStatus.textContent = 'Not linked to Benji.';
      throw error;
    }
  } finally {
    if (!popup.closed) popup.close();
  }
}

async function unlinkBenji() {
  await callBroker('DELETE', '/v1/benji/link');
  showLink({ linked: false });
}

/** Runs a button's action, showing what went wrong as text. */
function onClick(button, action) {
  button.addEventListener('click', async () => {
    errorText.textContent = '';
    try {
      await action();
    } catch (error) {
      errorText.textContent = error.message;
    }
  });
}

for (const button of document.querySelectorAll('[data-user]')) onClick(button, () => signIn(button.dataset.user));
onClick(connectButton, connectBenji);
onClick(unlinkButton, unlinkBenji);
