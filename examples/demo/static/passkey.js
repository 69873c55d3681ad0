// The demo's only script: the flask-passkey API on one side, the browser's WebAuthn API on the
// other. No build step, no dependency. The flow is the one Auth0's SDKs follow:
//   sign up: POST /passkey/register  -> navigator.credentials.create() -> POST /oauth/token
//   sign in: POST /passkey/challenge -> navigator.credentials.get()    -> POST /oauth/token
// and then the ID token goes to this site's POST /session, which verifies it before trusting it.

const page = document.body.dataset;
const CLIENT_ID = page.clientId;
const API_PREFIX = page.apiPrefix || "";
const SCOPE = page.scope || "openid profile email";
const WEBAUTHN_GRANT = "urn:okta:params:oauth:grant-type:webauthn";
const CSRF_TOKEN = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// -- errors, in words -----------------------------------------------------------------------

/** An error answer from the API: `{"error": "...", "error_description": "..."}`. */
class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.error_description || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body?.error ?? "";
    this.description = body?.error_description ?? "";
    this.body = body ?? {};
    this.retryAfter = retryAfter;
  }
}

class NetworkError extends Error {
  constructor() {
    super("network");
    this.name = "NetworkError";
  }
}

const SIGN_IN_LINK = { href: "/", text: "Sign in with its passkey" };
const SIGN_UP_LINK = { href: "/signup", text: "Create an account" };

/**
 * What to tell the user about `error` during `operation` ("signup" or "signin").
 * Returns {text, link?} or null when there is nothing to say (an aborted autofill request).
 */
function explain(error, operation) {
  const signingUp = operation === "signup";
  if (error instanceof NetworkError) {
    return { text: "We couldn't reach the server. Check your connection (and that the demo is still running), then try again." };
  }
  if (error instanceof ApiError) {
    const description = error.description.toLowerCase();
    if (error.status === 429) {
      const wait = Number(error.retryAfter) > 0 ? `${error.retryAfter} seconds` : "a minute";
      return { text: `Too many attempts from your network. Please wait ${wait} and try again.` };
    }
    if (error.status === 503) {
      return { text: "The sign-in service is temporarily unavailable. Please try again in a moment." };
    }
    if (error.status === 404) {
      return { text: "Passkeys are turned off for this site at the moment." };
    }
    if (error.code === "invalid_grant") {
      if (description.includes("unknown credential")) {
        return {
          text: "This passkey isn't registered here: its account may have been deleted. Choose another passkey, or create a new account.",
          link: SIGN_UP_LINK,
        };
      }
      if (description.includes("expired") || description.includes("already used")) {
        return { text: "That attempt took too long or was already used. Please try again." };
      }
      return {
        text: `Your passkey couldn't be verified, so nothing happened. Please try again. (${error.description})`,
      };
    }
    if (error.code === "invalid_request" && description.includes("already exists")) {
      return {
        text: "An account with this email already exists.",
        link: SIGN_IN_LINK,
      };
    }
    if (error.code === "invalid_request" && description.includes("email")) {
      return { text: "Please enter a valid email address." };
    }
    if (error.code === "invalid_request" && description.includes("custom domain")) {
      return { text: "Passkeys don't work on this address. Open the site on its domain name (see the note above)." };
    }
    if (error.code === "access_denied") {
      return { text: `Not allowed: ${error.description}` };
    }
    if (error.code === "invalid_client" || error.code === "unauthorized_client") {
      return { text: `This site's passkey settings are wrong (${error.description}) Please tell the site owner.` };
    }
    return { text: error.description || `Something went wrong (HTTP ${error.status}). Please try again.` };
  }
  switch (error?.name) {
    case "AbortError":
      return null;
    case "NotAllowedError":
      return signingUp
        ? { text: "The passkey prompt was cancelled or timed out, so no account was created. Try again when you're ready." }
        : { text: "The passkey prompt was cancelled or timed out, so you're not signed in. Try again when you're ready." };
    case "InvalidStateError":
      return signingUp
        ? { text: "This device already has a passkey for this account.", link: SIGN_IN_LINK }
        : { text: "Your passkey couldn't be used right now. Please try again." };
    case "SecurityError":
      return { text: "Your browser refused to use a passkey on this address. Passkeys need the site's domain name (http://localhost works; an IP address doesn't)." };
    case "NotSupportedError":
      return { text: "Your browser or device can't create the kind of passkey this site needs." };
    default:
      console.error(error);
      return { text: "Something unexpected went wrong. Please try again." };
  }
}

const messageBox = document.getElementById("message");

function showMessage(explanation, kind = "error") {
  if (!messageBox || !explanation) return;
  messageBox.replaceChildren(document.createTextNode(explanation.text));
  if (explanation.link) {
    const link = document.createElement("a");
    link.href = explanation.link.href;
    link.textContent = explanation.link.text;
    messageBox.append(" ", link);
  }
  messageBox.className = `notice ${kind}`;
  messageBox.hidden = false;
}

function hideMessage() {
  if (messageBox) messageBox.hidden = true;
}

// -- HTTP -----------------------------------------------------------------------------------

async function postJSON(url, body, headers = {}) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new NetworkError();
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: a proxy error page, say; the status tells enough
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return data;
}

const api = (path, body) => postJSON(API_PREFIX + path, { client_id: CLIENT_ID, ...body });

// -- WebAuthn JSON <-> binary ---------------------------------------------------------------

function base64urlToBuffer(value) {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function bufferToBase64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const decodeDescriptors = (list) =>
  (list ?? []).map((descriptor) => ({ ...descriptor, id: base64urlToBuffer(descriptor.id) }));

/** `authn_params_public_key` of /passkey/register -> PublicKeyCredentialCreationOptions. */
function creationOptions(json) {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: base64urlToBuffer(json.challenge),
    user: { ...json.user, id: base64urlToBuffer(json.user.id) },
    excludeCredentials: decodeDescriptors(json.excludeCredentials),
  };
}

/** `authn_params_public_key` of /passkey/challenge -> PublicKeyCredentialRequestOptions. */
function requestOptions(json) {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  const options = { ...json, challenge: base64urlToBuffer(json.challenge) };
  if (json.allowCredentials) options.allowCredentials = decodeDescriptors(json.allowCredentials);
  return options;
}

/** A PublicKeyCredential as `authn_response` (what `toJSON()` gives where it exists). */
function credentialJSON(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const response = credential.response;
  const json = {
    id: credential.id,
    rawId: bufferToBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
    clientExtensionResults: credential.getClientExtensionResults?.() ?? {},
    response: { clientDataJSON: bufferToBase64url(response.clientDataJSON) },
  };
  if (response.attestationObject) {
    json.response.attestationObject = bufferToBase64url(response.attestationObject);
    json.response.transports = response.getTransports?.() ?? [];
  } else {
    json.response.authenticatorData = bufferToBase64url(response.authenticatorData);
    json.response.signature = bufferToBase64url(response.signature);
    if (response.userHandle) json.response.userHandle = bufferToBase64url(response.userHandle);
  }
  return json;
}

// -- the ceremonies -------------------------------------------------------------------------

async function redeem(authSession, credential) {
  return api("/oauth/token", {
    grant_type: WEBAUTHN_GRANT,
    auth_session: authSession,
    authn_response: credentialJSON(credential),
    scope: SCOPE,
  });
}

/** Hand the token response to this site, which verifies the ID token and signs us in. */
async function startSession(tokens, credential) {
  const answer = await postJSON(
    "/session",
    { id_token: tokens.id_token, credential_id: credential.id },
    { "X-CSRF-Token": CSRF_TOKEN },
  );
  window.location.assign(answer.redirect);
}

async function signUp(profile) {
  const started = await api("/passkey/register", { user_profile: profile });
  const credential = await navigator.credentials.create({
    publicKey: creationOptions(started.authn_params_public_key),
  });
  const tokens = await redeem(started.auth_session, credential);
  await startSession(tokens, credential);
}

async function finishSignIn(started, credential) {
  let tokens;
  try {
    tokens = await redeem(started.auth_session, credential);
  } catch (error) {
    // Said only once the auth_session was valid: the passkey is not (or no longer) one of ours.
    const unknown = error instanceof ApiError && error.body.unknown_credential_id === credential.id;
    if (unknown && typeof PublicKeyCredential.signalUnknownCredential === "function") {
      // Lets the passkey provider hide (or remove) a passkey this site no longer knows.
      PublicKeyCredential.signalUnknownCredential({
        rpId: started.authn_params_public_key.rpId,
        credentialId: credential.id,
      }).catch(() => {});
    }
    throw error;
  }
  await startSession(tokens, credential);
}

// -- page wiring ----------------------------------------------------------------------------

function setBusy(button, busy, label) {
  if (!button) return;
  const text = button.querySelector(".label") ?? button;
  if (busy) {
    button.dataset.idleLabel ??= text.textContent;
    text.textContent = label;
  } else if (button.dataset.idleLabel) {
    text.textContent = button.dataset.idleLabel;
  }
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
  document.body.classList.toggle("busy", busy);
}

function setUpSignUp() {
  const form = document.getElementById("signup-form");
  const button = document.getElementById("signup-button");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    hideMessage();
    const email = form.email.value.trim();
    const name = form.name.value.trim();
    if (!email || !form.email.checkValidity()) {
      showMessage({ text: "Please enter a valid email address." });
      form.email.focus();
      return;
    }
    setBusy(button, true, "Waiting for your passkey…");
    try {
      await signUp(name ? { email, name } : { email });
    } catch (error) {
      setBusy(button, false);
      showMessage(explain(error, "signup"));
    }
  });
}

function setUpSignIn() {
  const form = document.getElementById("signin-form");
  const button = document.getElementById("signin-button");
  // The autofill (conditional mediation) request in flight, if any: one at a time.
  let autofill = null;

  async function startAutofill() {
    const available =
      typeof PublicKeyCredential.isConditionalMediationAvailable === "function" &&
      (await PublicKeyCredential.isConditionalMediationAvailable().catch(() => false));
    if (!available || autofill) return;
    const controller = new AbortController();
    const run = { controller };
    autofill = run;
    run.done = (async () => {
      let started;
      try {
        started = await api("/passkey/challenge", {});
      } catch (error) {
        if (error instanceof ApiError && error.status === 429) showMessage(explain(error, "signin"));
        if (autofill === run) autofill = null;
        return;
      }
      if (controller.signal.aborted) return;
      const options = started.authn_params_public_key;
      // The challenge expires server-side: fetch a fresh one a little before it does.
      const renew = setTimeout(restartAutofill, Math.max(10_000, (options.timeout ?? 60_000) - 5_000));
      let credential;
      try {
        credential = await navigator.credentials.get({
          mediation: "conditional",
          publicKey: requestOptions(options),
          signal: controller.signal,
        });
      } catch (error) {
        clearTimeout(renew);
        if (autofill === run) autofill = null;
        if (!controller.signal.aborted) showMessage(explain(error, "signin"));
        return;
      }
      clearTimeout(renew);
      if (autofill === run) autofill = null;
      if (!credential) return;
      hideMessage();
      setBusy(button, true, "Signing you in…");
      try {
        await finishSignIn(started, credential);
      } catch (error) {
        setBusy(button, false);
        showMessage(explain(error, "signin"));
        startAutofill();
      }
    })();
  }

  async function stopAutofill() {
    const run = autofill;
    autofill = null;
    if (!run) return;
    run.controller.abort();
    await run.done; // the browser serves one WebAuthn request at a time
  }

  async function restartAutofill() {
    await stopAutofill();
    startAutofill();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    hideMessage();
    setBusy(button, true, "Waiting for your passkey…");
    await stopAutofill();
    try {
      const started = await api("/passkey/challenge", {});
      const credential = await navigator.credentials.get({
        publicKey: requestOptions(started.authn_params_public_key),
      });
      await finishSignIn(started, credential);
    } catch (error) {
      setBusy(button, false);
      showMessage(explain(error, "signin"));
      startAutofill();
    }
  });

  startAutofill();
}

/**
 * The account page tells the passkey provider what this site knows (WebAuthn Signal API, where
 * the browser has it): the passkeys it still accepts for the user, so the provider can hide one
 * deleted here, and the user's current name and display name.
 */
function signalAccountState() {
  const signals = JSON.parse(document.getElementById("passkey-signals")?.textContent || "null");
  if (!signals) return;
  const { rpId, userId } = signals;
  if (typeof PublicKeyCredential.signalAllAcceptedCredentials === "function") {
    PublicKeyCredential.signalAllAcceptedCredentials({
      rpId, userId, allAcceptedCredentialIds: signals.acceptedCredentialIds,
    }).catch(() => {});
  }
  if (typeof PublicKeyCredential.signalCurrentUserDetails === "function") {
    PublicKeyCredential.signalCurrentUserDetails({
      rpId, userId, name: signals.name, displayName: signals.displayName,
    }).catch(() => {});
  }
}

function main() {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.getElementById("unsupported")?.removeAttribute("hidden");
    document.querySelectorAll("#signin-button, #signup-button").forEach((b) => (b.disabled = true));
    return;
  }
  if (page.page === "signup") setUpSignUp();
  if (page.page === "signin") setUpSignIn();
  if (page.page === "account") signalAccountState();
  document.body.dataset.ready = "true"; // for the browser tests: the handlers are in place
}

main();
