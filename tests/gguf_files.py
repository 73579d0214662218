"""A real GGUF file written from a small transformers Llama checkpoint, for the loading tests.

The tests need a GGUF file without a download: this writes one from the demo teacher (or
any Llama checkpoint with a byte-level BPE tokenizer) with the ``gguf`` package's own
writer, in llama.cpp's layout: its tensor names, its row order of the query and key
projections (llama.cpp interleaves each head's two rotary halves, and transformers'
GGUF loader undoes that), and the tokenizer as GGUF's ``gpt2`` model (tokens, merges,
token types, special ids, chat template). Loading it back through transformers must give
the checkpoint's own logits: that is what the tests check.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

# GGUF's token types (llama.cpp's llama_token_type): normal text and control tokens.
NORMAL, CONTROL = 1, 3


def rotary_rows_interleaved(weight: np.ndarray, heads: int) -> np.ndarray:
    """A query or key projection's rows in llama.cpp's order: within each head, the
    rotary embedding's first and second halves alternate row by row (transformers keeps
    the halves apart). Its GGUF loader applies the inverse."""
    half = weight.shape[0] // heads // 2
    return weight.reshape(heads, 2, half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


GPT2_DEFAULT = "<|endoftext|>"


def demo_teacher_with_gpt2_pad(out: Path) -> Path:
    """A copy of the demo teacher whose pad token is spelled ``<|endoftext|>``. transformers
    builds a GGUF file's byte-level tokenizer as GPT-2's, which adds that token when the
    vocabulary lacks it (one id past a model whose every id is taken); real GGUF files of
    this family have it, and so does this copy. Weights and ids are the teacher's."""
    import shutil

    from cliffaudit.demo import paths

    shutil.copytree(paths.TEACHER_DIR, out)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        path = out / name
        path.write_text(path.read_text().replace("<|pad|>", GPT2_DEFAULT))
    return out


def write_gguf(checkpoint: Path, out: Path, name: str = "tiny") -> Path:
    """``checkpoint`` (a Llama with tied embeddings or an output head) as the float32 GGUF file ``out``."""
    import gguf

    config = json.loads((checkpoint / "config.json").read_text())
    tokenizer = json.loads((checkpoint / "tokenizer.json").read_text())
    tokenizer_config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    template_file = checkpoint / "chat_template.jinja"
    weights = load_file(str(checkpoint / "model.safetensors"))
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]

    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
    writer.add_rope_dimension_count(config.get("head_dim") or config["hidden_size"] // heads)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab = tokenizer["model"]["vocab"]
    special = {t["id"] for t in tokenizer["added_tokens"] if t["special"]}
    tokens = sorted(vocab, key=vocab.get)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([CONTROL if vocab[t] in special else NORMAL for t in tokens])
    merges = tokenizer["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    writer.add_eos_token_id(ids[tokenizer_config["eos_token"]])
    if tokenizer_config.get("pad_token"):
        writer.add_pad_token_id(ids[tokenizer_config["pad_token"]])
    writer.add_add_bos_token(False)
    if template_file.is_file():
        writer.add_chat_template(template_file.read_text())

    def add(gguf_name: str, tensor: np.ndarray) -> None:
        writer.add_tensor(gguf_name, np.ascontiguousarray(tensor, dtype=np.float32))

    add("token_embd.weight", weights["model.embed_tokens.weight"])
    for layer in range(config["num_hidden_layers"]):
        hf, block = f"model.layers.{layer}.", f"blk.{layer}."
        add(block + "attn_norm.weight", weights[hf + "input_layernorm.weight"])
        add(block + "attn_q.weight", rotary_rows_interleaved(weights[hf + "self_attn.q_proj.weight"], heads))
        add(block + "attn_k.weight", rotary_rows_interleaved(weights[hf + "self_attn.k_proj.weight"], kv_heads))
        add(block + "attn_v.weight", weights[hf + "self_attn.v_proj.weight"])
        add(block + "attn_output.weight", weights[hf + "self_attn.o_proj.weight"])
        add(block + "ffn_norm.weight", weights[hf + "post_attention_layernorm.weight"])
        add(block + "ffn_gate.weight", weights[hf + "mlp.gate_proj.weight"])
        add(block + "ffn_up.weight", weights[hf + "mlp.up_proj.weight"])
        add(block + "ffn_down.weight", weights[hf + "mlp.down_proj.weight"])
    add("output_norm.weight", weights["model.norm.weight"])
    if not config.get("tie_word_embeddings"):
        add("output.weight", weights["lm_head.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
