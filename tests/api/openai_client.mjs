// openai_client.mjs - ask `sam api` through the official `openai` npm client.
//
//   node openai_client.mjs BASE_URL plain|stream MESSAGE [MAX_TOKENS] [PREFIX]
//
// Prints the answer (nothing else) to stdout. The package is resolved from
// PREFIX/node_modules (default: build/node under the current directory),
// where tests/api/test_api_openai.c installs it with `npm install --prefix`.
import { createRequire } from "node:module";
import { resolve } from "node:path";

const [base, mode, message, maxTokens = "40", prefix = "build/node"] = process.argv.slice(2);
if (!base || !message || (mode !== "plain" && mode !== "stream")) {
  console.error("usage: node openai_client.mjs BASE_URL plain|stream MESSAGE [MAX_TOKENS] [PREFIX]");
  process.exit(2);
}

const require = createRequire(resolve(prefix, "package.json"));
const mod = await import(require.resolve("openai"));
const OpenAI = mod.default ?? mod.OpenAI;

const client = new OpenAI({ baseURL: base + "/v1", apiKey: "x", maxRetries: 0, timeout: 30000 });
const request = {
  model: "stories260K",
  messages: [{ role: "user", content: message }],
  temperature: 0,
  max_tokens: Number(maxTokens),
};

let answer = "";
if (mode === "stream") {
  const stream = await client.chat.completions.create({ ...request, stream: true });
  let finish = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    answer += choice.delta?.content ?? "";
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  if (finish !== "stop" && finish !== "length") {
    console.error(`stream ended without a finish_reason (got ${finish})`);
    process.exit(1);
  }
} else {
  const completion = await client.chat.completions.create({ ...request, stream: false });
  if (completion.object !== "chat.completion" || completion.choices[0].message.role !== "assistant") {
    console.error("unexpected reply: " + JSON.stringify(completion));
    process.exit(1);
  }
  answer = completion.choices[0].message.content;
}
process.stdout.write(answer);
