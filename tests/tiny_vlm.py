"""A real, tiny vision-language model built in-process, so vision training tests run offline in seconds.

A LLaVA of ~48k parameters: a 1-layer CLIP vision tower on 32x32 images cut in 8x8 patches (16 image tokens per
image, CLIP's CLS token dropped), a 2-layer Qwen2, a byte-level BPE tokenizer and the PIL image processor (so
torchvision is not needed). Its ChatML template renders typed content parts and marks the assistant turns with
`{% generation %}`, so that `assistant_only_loss` works.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE, PATCH_SIZE, HIDDEN = 32, 8, 32
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2
CHAT_TEMPLATE = (
    "{%- for m in messages -%}{{- '<|im_start|>' + m['role'] + '\n' -}}"
    "{%- if m['role'] == 'assistant' -%}{% generation %}"
    "{%- if m['content'] is string -%}{{- m['content'] -}}{%- else -%}{%- for p in m['content'] -%}"
    "{%- if p['type'] == 'text' -%}{{- p['text'] -}}{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>' -}}{% endgeneration %}{{- '\n' -}}"
    "{%- else -%}"
    "{%- if m['content'] is string -%}{{- m['content'] -}}{%- else -%}{%- for p in m['content'] -%}"
    "{%- if p['type'] == 'image' -%}{{- '<image>' -}}{%- elif p['type'] == 'text' -%}{{- p['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}{{- '<|im_end|>\n' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "<image>"]
CORPUS = ["What is this?", "What colour is this image?", "A dog.", "A logo.", "It is red.", "It is green.",
          "It is blue.", "A square.", "Describe the picture.", "A dog on a skateboard."]


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 50, trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=SPECIAL))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<pad>",
                                   extra_special_tokens={"image_token": "<image>"})


def build_tiny_vlm(folder: Path) -> Path:
    """Save the tiny LLaVA and its processor into `folder`; both reload through AutoModelForImageTextToText and
    AutoProcessor, offline."""
    from transformers import (CLIPImageProcessorPil, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor, Qwen2Config)

    tokenizer = _tokenizer()
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE},
                                              crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer, patch_size=PATCH_SIZE, vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, which the "default" strategy drops
        chat_template=CHAT_TEMPLATE)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
        text_config=Qwen2Config(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tokenizer),
                                tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id, bos_token_id=None),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), image_seq_length=IMAGE_TOKENS,
        vision_feature_select_strategy="default", vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
