// Passkey ceremonies (WebAuthn) on the pages that offer them; everything else on those pages works
// without this file. Needs webauthn.js (@simplewebauthn/browser) loaded before it.
// - form[data-passkey-signin]: fetch options (POST data-options-url), ask the authenticator, post
//   its answer as the form's `response` field. With data-autofill, also offer the page's passkeys
//   in the email field's autofill (conditional UI) where the browser supports it.
// - form[data-passkey-register]: create a passkey with the options in data-options, then post it.
document.addEventListener('DOMContentLoaded', () => {
  const webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn || !webauthn.browserSupportsWebAuthn()) return;

  const say = (form, err) => {
    const out = form.querySelector('[data-passkey-error]');
    if (!out) return;
    // A person who closes the browser's dialog needs no error.
    if (err && err.name === 'AbortError') return;
    out.textContent = err && err.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out. Try again.' : (err && err.message) || 'Passkeys did not work here.';
    out.hidden = false;
  };

  const post = (form, answer) => {
    form.querySelector('input[name="response"]').value = JSON.stringify(answer);
    form.submit();
  };

  for (const form of document.querySelectorAll('form[data-passkey-signin]')) {
    const button = form.querySelector('button');
    form.hidden = false;
    const run = async (useBrowserAutofill) => {
      const res = await fetch(form.dataset.optionsUrl, { method: 'POST', headers: { accept: 'application/json' }, credentials: 'same-origin' });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.detail || 'Passkeys are not available right now.');
      post(form, await webauthn.startAuthentication({ optionsJSON: body, useBrowserAutofill }));
    };
    button.addEventListener('click', () => run(false).catch((err) => say(form, err)));
    if ('autofill' in form.dataset) {
      webauthn.browserSupportsWebAuthnAutofill().then((ok) => ok && run(true).catch(() => {}));
    }
  }

  for (const form of document.querySelectorAll('form[data-passkey-register]')) {
    const button = form.querySelector('button');
    form.hidden = false;
    button.addEventListener('click', async () => {
      try {
        post(form, await webauthn.startRegistration({ optionsJSON: JSON.parse(form.dataset.options) }));
      } catch (err) {
        say(form, err);
      }
    });
  }
});
