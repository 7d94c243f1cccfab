"""A real, tiny tokenizer and model built in-process, so training tests run offline in seconds.

Byte-level BPE trained on a few hundred strings, a ChatML-like template with `{% generation %}` markers (and
variants without them / without any template), and a 2-layer Qwen2 of ~30k parameters.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}<|im_start|>assistant\n"
    "{% generation %}{{ message['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Tools as Llama 3.1's and Mistral's templates read them (`tool.function.name`), tool results by their `name`.
TOOL_CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n{% for tool in tools %}"
    "tool {{ tool['function']['name'] }}: {{ tool['function']['description'] }}\n{% endfor %}<|im_end|>\n{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'tool' %}<|im_start|>tool {{ message['name'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% elif message.get('tool_calls') %}<|im_start|>assistant\n{% for call in message['tool_calls'] %}"
    "call {{ call['function']['name'] }}({{ call['function']['arguments'] | tojson }})\n{% endfor %}<|im_end|>\n"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    words = ("the a is of to and in what how many colour blue red answer question think eggs day ducks "
             "she sells market dollars sum number one two three four five six seven eight nine ten user "
             "assistant system tool hello hi please thanks recipe chicken rice weather paris").split()
    lines = [" ".join(words[i:i + 7]) for i in range(len(words))]
    lines += [f"{a} + {b} = {a + b} #### {a + b}" for a in range(20) for b in range(10)]
    lines += ["<think>", "</think>", "{\"name\": \"f\", \"arguments\": {}}"]
    return lines


def build_tiny_model(folder: Path, *, template: str | None = CHAT_TEMPLATE) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_corpus(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    if template is not None:
        fast.chat_template = template
    config = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(fast), tie_word_embeddings=True,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         max_position_embeddings=2048)
    model = Qwen2ForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def build_tiny_models(folder: Path, templates: dict[str, str | None]) -> dict[str, Path]:
    """One tiny model per chat template (None: no template), each in its own subfolder named as its key."""
    return {name: build_tiny_model(folder / name, template=template) for name, template in templates.items()}


if __name__ == "__main__":  # `python -m tests.tiny_model FOLDER`: the docs' offline model for `--model` examples
    import sys

    print(build_tiny_model(Path(sys.argv[1])))
