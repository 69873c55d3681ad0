// The single-page app: every call to the API goes through Auth0's auth0-spa-js, cross-origin.
//
// auth0.passkey.signup() / .login()  POST /passkey/register or /passkey/challenge, run the
//                                    WebAuthn ceremony and redeem it at /oauth/token; the SDK
//                                    caches the tokens (ID token verified, refresh token kept).
// auth0.getTokenSilently()           refreshes with the refresh token (useRefreshTokens), and,
//                                    with useMrrt, gets a My Account API token from the same
//                                    refresh token (the client's refresh_token.policies).
// auth0.myAccount.*                  the My Account API (/me/v1/authentication-methods), each
//                                    call with a My Account token the SDK gets as above.
import { createAuth0Client } from "/vendor/auth0-spa-js.production.esm.js";

const MY_ACCOUNT_SCOPES = [
  "create:me:authentication_methods",
  "read:me:authentication_methods",
  "update:me:authentication_methods",
  "delete:me:authentication_methods",
  "read:me:factors",
];

// The token endpoint's error_description for a passkey the server does not hold (said only
// once the auth_session was valid); the SDK keeps error and error_description of an answer.
const UNKNOWN_CREDENTIAL = "Unknown credential.";

const $ = (id) => document.getElementById(id);
let auth0;
let settings;
let refreshes = 0;

function show(state) {
  document.body.dataset.state = state;
  $("signed-out").hidden = state !== "signed-out";
  $("signed-in").hidden = state !== "signed-in";
}

function say(text) {
  $("message").hidden = true;
  $("notice").textContent = text;
  $("notice").hidden = false;
}

// A failure as the page shows it. A TypeError from fetch is the browser refusing the answer:
// the API did not allow this page's origin (CORS), or could not be reached at all.
function fail(error) {
  console.error(error);
  $("notice").hidden = true;
  const box = $("message");
  box.dataset.errorName = error.name || "Error";
  if (error instanceof TypeError) {
    box.textContent = `The API at ${settings.domain} cannot be reached from this page ` +
      `(${error.name}: ${error.message}). Is ${location.origin} one of the client's allowed origins?`;
  } else if (error.name === "NotAllowedError") {
    box.textContent = "The passkey prompt was cancelled or timed out.";
  } else {
    box.textContent = `${error.name || "Error"}: ${error.error_description || error.message}`;
  }
  box.hidden = false;
}

// Runs ``work`` with the buttons disabled; the page marks itself busy meanwhile (tests wait on
// data-busy).
async function step(work) {
  document.body.dataset.busy = "true";
  for (const button of document.querySelectorAll("button")) button.disabled = true;
  try {
    await work();
  } catch (error) {
    fail(error);
  } finally {
    for (const button of document.querySelectorAll("button")) button.disabled = false;
    document.body.dataset.busy = "false";
  }
}

function showTokenExpiry(response) {
  const claims = JSON.parse(atob(response.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  $("token-id").textContent = claims.jti;
  $("token-expiry").textContent = new Date(claims.exp * 1000).toISOString();
  return claims;
}

async function renderSignedIn() {
  const user = await auth0.getUser();
  $("greeting").textContent = `Hello, ${user.name || user.email}`;
  $("claim-sub").textContent = user.sub;
  $("claim-email").textContent = user.email || "";
  showTokenExpiry(await auth0.getTokenSilently({ detailedResponse: true }));
  $("refresh-count").textContent = String(refreshes);
  signalUserDetails(await renderPasskeys(), user);
  show("signed-in");
}

// The WebAuthn Signal API, where the browser has it: tell the passkey provider what this site
// knows, so it can hide passkeys deleted here and show the user's current name.
const signal = (name, options) =>
  typeof PublicKeyCredential[name] === "function"
    ? PublicKeyCredential[name](options).catch(() => {})
    : undefined;

// The passkeys the server still accepts for this user, per RP ID.
function signalAcceptedPasskeys(methods) {
  const byRpId = new Map();
  for (const method of methods) {
    const key = `${method.relying_party_id}\n${method.user_handle}`;
    if (!byRpId.has(key)) byRpId.set(key, []);
    byRpId.get(key).push(method.key_id);
  }
  for (const [key, ids] of byRpId) {
    const [rpId, userId] = key.split("\n");
    signal("signalAllAcceptedCredentials", { rpId, userId, allAcceptedCredentialIds: ids });
  }
}

// The user's current name and display name, for each RP ID their passkeys are for.
function signalUserDetails(methods, user) {
  const seen = new Set();
  for (const { relying_party_id: rpId, user_handle: userId } of methods) {
    if (seen.has(rpId)) continue;
    seen.add(rpId);
    signal("signalCurrentUserDetails", {
      rpId, userId, name: user.email || user.sub, displayName: user.name || user.email || user.sub,
    });
  }
}

// Sign in through the SDK's step-by-step calls, so that a passkey the server does not know can
// be signalled with its id and RP ID.
async function signIn() {
  const { authSession, publicKey } = await auth0.passkey.getLoginChallenge();
  const credential = await navigator.credentials.get({ publicKey });
  try {
    await auth0.passkey.getTokenWithPasskey({ authSession, credential });
  } catch (error) {
    if (error.error === "invalid_grant" && error.error_description === UNKNOWN_CREDENTIAL) {
      signal("signalUnknownCredential", { rpId: publicKey.rpId, credentialId: credential.id });
    }
    throw error;
  }
}

async function renderPasskeys() {
  const methods = await auth0.myAccount.getAuthenticationMethods("passkey");
  signalAcceptedPasskeys(methods);
  const list = $("passkeys");
  list.replaceChildren();
  for (const method of methods) {
    const row = $("passkey-row").content.firstElementChild.cloneNode(true);
    row.dataset.id = method.id;
    row.querySelector(".passkey-name").value = method.name || "";
    row.querySelector(".passkey-meta").textContent =
      `added ${method.created_at}` + (method.last_auth_at ? `, last used ${method.last_auth_at}` : "");
    row.querySelector(".rename").addEventListener("click", () => step(async () => {
      const name = row.querySelector(".passkey-name").value;
      await auth0.myAccount.updateAuthenticationMethod(method.id, { name });
      await renderPasskeys();
      say(`Renamed the passkey to “${name}”.`);
    }));
    row.querySelector(".delete").addEventListener("click", () => step(async () => {
      await auth0.myAccount.deleteAuthenticationMethod(method.id);
      await renderPasskeys();
      say("Deleted the passkey.");
    }));
    list.append(row);
  }
  return methods;
}

// Enrolment through the My Account API: a challenge (POST /me/v1/authentication-methods; 201
// or 202), the browser's ceremony, then POST <Location>/verify (200 or 201). The SDK takes any
// 2xx, so the page needs no status of its own.
async function addPasskey() {
  const challenge = await auth0.myAccount.enrollmentChallenge({ type: "passkey" });
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(challenge.authn_params_public_key);
  const credential = await navigator.credentials.create({ publicKey });
  await auth0.myAccount.enrollmentVerify({
    type: "passkey",
    location: challenge.location,
    auth_session: challenge.auth_session,
    authn_response: credential.toJSON(),
  });
  await renderPasskeys();
  say("Added a passkey.");
}

async function main() {
  settings = await (await fetch("/config.json")).json();
  auth0 = await createAuth0Client({
    domain: settings.domain,
    clientId: settings.clientId,
    useRefreshTokens: true, // silent refresh with the refresh token, no iframe
    useMrrt: true, // ... which also gets My Account tokens (Multi-Resource Refresh Token)
    cacheLocation: "localstorage", // a reload keeps the session (see README: trade-offs)
    authorizationParams: { scope: "openid profile email offline_access" },
  });

  $("signup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    step(async () => {
      const name = $("name").value.trim();
      await auth0.passkey.signup({ email: $("email").value.trim(), ...(name && { name }) });
      await renderSignedIn();
    });
  });
  $("signin-button").addEventListener("click", () => step(async () => {
    await signIn();
    await renderSignedIn();
  }));
  $("refresh-button").addEventListener("click", () => step(async () => {
    showTokenExpiry(await auth0.getTokenSilently({ cacheMode: "off", detailedResponse: true }));
    refreshes += 1;
    $("refresh-count").textContent = String(refreshes);
    say("Refreshed the tokens.");
  }));
  $("myaccount-button").addEventListener("click", () => step(async () => {
    const response = await auth0.getTokenSilently({
      detailedResponse: true,
      authorizationParams: { audience: settings.myAccountAudience, scope: MY_ACCOUNT_SCOPES.join(" ") },
    });
    const claims = showTokenExpiry(response);
    $("myaccount-audience").textContent = [].concat(claims.aud).join(" ");
    $("myaccount-scope").textContent = claims.scope;
    $("myaccount-token").hidden = false;
  }));
  $("add-passkey-button").addEventListener("click", () => step(addPasskey));
  $("signout-button").addEventListener("click", () => step(async () => {
    await auth0.logout({ openUrl: false }); // forget the tokens here; no redirect
    show("signed-out");
    say("You are signed out.");
  }));

  if (await auth0.isAuthenticated()) {
    await renderSignedIn();
  } else {
    show("signed-out");
  }
}

step(main).finally(() => {
  if (document.body.dataset.state === "loading") show("signed-out");
  document.body.dataset.ready = "true";
});
