// One call of @auth0/auth0-auth-js, for tests/sdk/test_auth0_auth_js.py.
//
// Usage: node auth_js.mjs <command> < request.json
// The request is {"client": AuthClientOptions, "options": <the method's options>}; the method's
// result is written to stdout as JSON. An error thrown by the SDK is written as
// {"error": {"name", "code", "message", "cause"}} and the exit status is 1.
// Commands: metadata, register, challenge, getTokenByPasskey, getTokenByRefreshToken.
import { AuthClient } from "@auth0/auth0-auth-js";

const calls = {
  metadata: (client) => client.getServerMetadata(),
  register: (client, options) => client.passkey.register(options),
  challenge: (client, options) => client.passkey.challenge(options),
  getTokenByPasskey: (client, options) => client.passkey.getTokenByPasskey(options),
  getTokenByRefreshToken: (client, options) => client.getTokenByRefreshToken(options),
};

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
}

const call = calls[process.argv[2]];
if (!call) {
  process.stderr.write(`unknown command ${process.argv[2]}; one of ${Object.keys(calls)}\n`);
  process.exit(2);
}
const request = await readStdin();
try {
  const result = await call(new AuthClient(request.client), request.options ?? {});
  process.stdout.write(JSON.stringify(result ?? null));
} catch (error) {
  const { name, code, message, cause } = error;
  process.stdout.write(JSON.stringify({ error: { name, code, message, cause } }));
  process.exitCode = 1;
}
