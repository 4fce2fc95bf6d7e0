// "Export as script": the run the form describes, as one standalone PyTorch file (POST
// /api/export-script, app/export.py). The server validates the config as it does a start and
// answers a bad one with the field it refuses; the file downloads under the server's name for it.

/** Ask the server for the script of `config` (and, in compare mode, run `run` of the twins);
 *  resolves to {name, text}, or throws an Error whose message names what was refused.
 *  `headers`: the page's upload token, so a run on uploaded data embeds the session's table. */
export async function fetchScript(config, compare = null, run = "A", headers = {}) {
  const body = { config, ...(compare ? { compare, run } : {}) };
  const reply = await fetch("api/export-script", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (!reply.ok) {
    const refusal = await reply.json().catch(() => null);
    const first = refusal?.errors?.[0];
    throw new Error(first ? `${first.field}: ${first.message}` : refusal?.message ?? `the server answered ${reply.status}`);
  }
  const disposition = reply.headers.get("Content-Disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "shiftscope-run.py";
  return { name, text: await reply.text() };
}
