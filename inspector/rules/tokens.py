"""The model's tokenizer and chat template (TP5xx), checked with `--model` by `inspector.tokens`."""

from __future__ import annotations

from trlprep.inspector.rules.catalog import ERROR, WARNING, register, Rule

NO_CHAT_TEMPLATE = register(Rule("TP501", "no-chat-template", ERROR, "the tokenizer has no chat template, and the data is conversational",
         "pick a model with a chat template, or set one (--set chat_template_path=...)", "tokens",
         why="TRL cannot render messages without a template"))

TEMPLATE_RENDER_FAILURE = register(Rule("TP502", "template-render-failure", ERROR, "the chat template raises an error on the row",
         "fix the row (the template's own message says what it wants) or use another template", "tokens",
         why="the trainer stops at the first such row"))

TEMPLATE_DROPS_ROLE = register(Rule("TP503", "template-drops-role", WARNING, "the chat template ignores or rejects a role the data uses",
         "merge the system message into the first user turn (`convert --drop-system`) or change template",
         "tokens", why="the dropped text is never seen by the model"))

NO_GENERATION_MARKERS = register(Rule("TP504", "no-generation-markers", WARNING,
         "the chat template has no {% generation %} markers, so assistant_only_loss is impossible",
         "use a training template with markers (TRL's get_training_chat_template)", "tokens",
         why="without them every token of the conversation is trained"))

PROMPT_NOT_TOKEN_PREFIX = register(Rule("TP505", "prompt-not-token-prefix", WARNING,
         "the tokenized prompt is not a prefix of tokenized prompt+completion (TRL warns \"Mismatch between "
         "tokenized prompt\"), so the completion mask is off",
         "use a prefix-preserving template (e.g. one that keeps earlier <think> blocks)", "tokens",
         why="prompt tokens are trained, or answer tokens masked"))

STOP_TOKEN_NOT_TRAINED = register(Rule("TP506", "stop-token-not-trained", WARNING,
         "the end-of-turn / EOS token falls outside the trained span, so the model may never learn to stop",
         "put the end-of-turn token inside the template's generation block, or set eos_token to the template's",
         "tokens", why="a model that never learned to stop generates until max_new_tokens"))

DOUBLE_BOS = register(Rule("TP507", "double-bos", WARNING, "the row starts with the BOS token twice",
         "let either the template or the tokenizer add BOS, not both", "tokens",
         why="every training row then differs from what the model sees at inference"))

SPECIAL_TOKEN_IN_CONTENT = register(Rule("TP508", "special-token-in-content", WARNING,
         "content holds a special token string of this tokenizer, which tokenizes as the control token",
         "remove or escape it", "tokens", why="the text is read as a turn boundary or end of sequence"))

OVER_MAX_LENGTH = register(Rule("TP509", "over-max-length", WARNING, "the row is longer than max_length tokens",
         "raise max_length (see recommended_max_length) or shorten the row", "tokens",
         why="trainers truncate it (the answer's end is lost) or drop it"))

IMAGE_CUT_BY_MAX_LENGTH = register(Rule("TP510", "image-cut-by-max-length", ERROR,
         "max_length cuts into the row's image tokens: its images alone, or its text up to the end of its last "
         "image, are longer than max_length",
         "raise max_length past the row's last image (or leave it unset), use smaller images, or drop the row",
         "tokens", why="TRL truncates the tokens but not the image features, and training stops at the row's "
                       "batch with \"Mismatch in image token count\""))

IMAGES_NOT_RENDERED = register(Rule("TP511", "images-not-rendered", ERROR,
         "the chat template (or a text-only model) does not turn the row's image parts into image tokens: it "
         "drops them, or prints the content parts as a Python list",
         "use the model's processor chat template, one that renders {\"type\": \"image\"} parts, or a "
         "vision-language model", "tokens",
         why="the model never sees the images, or TRL stops on the count of image tokens"))

# With tool-call data, one row's calls and tools are rendered through the template (`inspector.tokens.probe_tool_row`).
TOOL_CALL_DOUBLE_ENCODED = register(Rule("TP520", "tool-call-double-encoded", ERROR,
         "the chat template renders a tool call's arguments as a JSON string holding JSON "
         "(`\"{\\\"city\\\": \\\"Paris\\\"}\"`), not as a JSON object",
         "run the verdict's `convert` command, which writes each call's arguments as a JSON object (TP605), as "
         "TRL documents them",
         "tokens", why="Qwen2.5's and other templates apply `tojson` to the arguments: given a string they quote it, "
                       "and the model learns to emit calls its tool parser cannot read"))

TOOL_CALL_TEMPLATE_ERROR = register(Rule("TP521", "tool-call-template-error", ERROR,
         "the chat template raises an error on a row's tool calls, tool results or `tools` (it renders the row "
         "without them)",
         "write string arguments as JSON objects; a template that rejects object arguments (the original "
         "DeepSeek-V3's) or tool turns (Gemma 3's \"roles must alternate\") needs a tool-calling one "
         "(--set chat_template_path=...)", "tokens",
         why="the trainer stops at the first tool-call row (each such row is also TP502)"))

TEMPLATE_WITHOUT_TOOLS = register(Rule("TP522", "template-without-tools", ERROR,
         "the chat template renders the same text with or without the row's tool calls or its `tools`: it has "
         "no tool support",
         "use the model's tool-calling template, or a model whose template renders `tools` and `tool_calls`",
         "tokens", why="every call and tool schema of the data is silently left out of training"))
TEMPLATE_DROPS_REASONING = register(Rule("TP512", "template-drops-reasoning", WARNING,
         "the row's traces are in `reasoning_content`, which the chat template does not render: every one of them "
         "is left out of training",
         "write the traces inline (`convert --reasoning inline`, or `convert --model M`, which writes what M's "
         "template reads), or use a template that renders `reasoning_content`", "tokens",
         why="the model is trained on the answers alone, and never learns the thinking the data holds; nothing "
             "fails, TRL passes the field to the template and the template ignores it"))

TEMPLATE_STRIPS_EARLIER_TRACES = register(Rule("TP513", "template-strips-earlier-traces", WARNING,
         "the chat template drops the reasoning of assistant turns before the last user turn, and the row holds "
         "traces there: those turns train their answers without the thinking the data holds",
         "split the conversation into one row per exchange (each then keeps its trace), or accept that earlier "
         "turns train without it; a training template that keeps every trace also keeps the prompt a token prefix",
         "tokens",
         why="Qwen3-style templates render only the last exchange's thinking, as the model sees a conversation at "
             "inference; an SFT row then trains the earlier answers with no trace before them, which the data "
             "did not mean"))
