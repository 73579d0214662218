"""Contract throughput: build the token-level contract and label 1,000 outputs;
then the same on a 32,000-token vocabulary, to show how the valid sets scale; then
the time of one valid set at Qwen3's vocabulary size (151,936 tokens) for the
schemas users have (pydantic models, tests/contract/pydantic_models.py).

Prints measured figures; not a test (shared machines are noisy). Uses the demo
tokenizer and the demo probe records (their per-record ranking schemas), with
outputs made from each record's candidates: valid rankings in random layouts,
and mutated ones (duplicates, foreign codes, truncations) so that violations
are exercised too.
"""

from __future__ import annotations

import json
import random
import time

from demo_paths import demo_paths
from transformers import AutoTokenizer

from cliffaudit.contract import TokenContract
from cliffaudit.demo.schema import record_schema

N_OUTPUTS = 1000


def _outputs(records: list[dict], rng: random.Random) -> list[tuple[str, dict]]:
    out = []
    for i in range(N_OUTPUTS):
        record = records[i % len(records)]
        codes = list(record["schema"]["properties"]["ranking"]["items"]["enum"])
        rng.shuffle(codes)
        roll = rng.random()
        if roll < 0.15:
            codes[rng.randrange(1, len(codes))] = codes[0]
        elif roll < 0.25:
            codes[-1] = "ZZ" + codes[-1][2:]
        elif roll < 0.35:
            codes = codes[:-1]
        text = json.dumps({"ranking": codes}, indent=rng.choice([None, None, 2]))
        out.append((text, record["schema"]))
    return out


def _train_bpe(corpus: list[str], vocab_size: int, use_regex: bool):
    """A byte-level BPE tokenizer trained here (``use_regex=False``: merges may cross
    the GPT-2 pre-tokenizer's boundaries, e.g. out of a string and into the next)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    model.decoder = decoders.ByteLevel()
    model.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|eos|>"],
                                                          show_progress=False,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=model, eos_token="<|eos|>")


def _synthetic(rng: random.Random):
    """Without the demo checkpoints: a byte-level BPE tokenizer trained here on
    ranking outputs, and 64 records of 8 candidate codes each."""
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    records = []
    for _ in range(64):
        codes = sorted({rng.choice(letters) + rng.choice(letters) + str(rng.randint(10, 99)) for _ in range(8)})
        while len(codes) < 8:
            codes.append(f"Q{len(codes)}X{rng.randint(10, 99)}")
        records.append({"schema": record_schema(codes)})
    corpus = [json.dumps({"ranking": r["schema"]["properties"]["ranking"]["items"]["enum"]}) for r in records] * 4
    return _train_bpe(corpus, 768, use_regex=True), records, "synthetic byte-level BPE"


def main() -> None:
    try:
        paths = demo_paths()
        tokenizer = AutoTokenizer.from_pretrained(str(paths.TEACHER_DIR))
        records = [json.loads(line) for line in paths.PROBES_PATH.read_text().splitlines() if line.strip()]
        name = "demo"
    except SystemExit as missing:
        print(missing)
        print("contract bench: using a synthetic tokenizer and records instead")
        tokenizer, records, name = _synthetic(random.Random(1))
    outputs = _outputs(records, random.Random(0))
    sequences = [tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id] for text, _ in outputs]
    schemas = [schema for _, schema in outputs]

    start = time.perf_counter()
    contract = TokenContract.from_tokenizer(tokenizer)
    contract.analyze_batch(sequences[:1], schemas[:1])  # the llguidance tokenizer and one grammar
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    batch = contract.analyze_batch(sequences, schemas)
    label_s = time.perf_counter() - start
    positions = sum(len(s.labels) for s in batch.sequences)
    violations = sum(s.violation is not None for s in batch.sequences)

    start = time.perf_counter()
    contract.analyze_batch(sequences, schemas)
    warm_s = time.perf_counter() - start

    print(f"tokenizer: {name} ({contract.vocab.size} tokens); records: {len(records)}; "
          f"grammars compiled: {len(contract._schemas)}")
    print(f"contract build (vocabulary, llguidance tokenizer, first grammar): {build_s * 1e3:.0f} ms")
    print(f"label {N_OUTPUTS} outputs ({positions} positions, {violations} with a violation): "
          f"{label_s:.2f} s cold, {warm_s:.2f} s warm ({positions / warm_s:,.0f} positions/s warm)")
    print(f"distinct masks in the batch: {batch.packed_masks.shape[0]} for {positions} positions "
          f"({batch.packed_masks.nbytes / 1024:.0f} KiB packed)")


def _slot_codes(rng: random.Random) -> list[str]:
    return [f"{'ABCDEFGH'[i]}{i + 1}{rng.randint(0, 9)}" for i in range(8)]


def _large_vocabulary(rng: random.Random):
    """A 32,000-token byte-level BPE trained here on JSON and quoted text, with no
    pre-tokenizer: many tokens cross into and out of strings (``2",\n    "B``), the
    ones a valid-set computation has to judge."""
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    corpus = []
    for _ in range(20000):
        roll = rng.random()
        if roll < 0.4:
            codes = _slot_codes(rng)
            rng.shuffle(codes)
            corpus.append(json.dumps({"ranking": codes}, indent=rng.choice([None, 2])))
        elif roll < 0.7:
            corpus.append(json.dumps({rng.choice(words): " ".join(rng.choices(words, k=6)) for _ in range(4)}))
        else:
            corpus.append(" ".join(f'"{rng.choice(words)}"{rng.choice([",", ".", ":", "", "}", "]"])}' for _ in range(12)))
    return _train_bpe(corpus, 32000, use_regex=False)


def scaling() -> None:
    rng = random.Random(2)
    tokenizer = _large_vocabulary(rng)
    sequences, schemas = [], []
    for _ in range(100):
        codes = _slot_codes(rng)
        schema = record_schema(codes)
        for _ in range(4):
            rng.shuffle(codes)
            text = json.dumps({"ranking": codes}, indent=rng.choice([None, 2]))
            sequences.append(tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id])
            schemas.append(schema)
    TokenContract.from_tokenizer(tokenizer).analyze_batch(sequences[:1], schemas[:1])  # the index
    contract = TokenContract.from_tokenizer(tokenizer)
    start = time.perf_counter()
    batch = contract.analyze_batch(sequences, schemas)
    took = time.perf_counter() - start
    positions = sum(len(s.labels) for s in batch.sequences)
    print(f"32,000-token vocabulary: label {len(sequences)} outputs ({positions} positions): {took:.2f} s cold "
          f"({1e3 * took / len(sequences):.2f} ms per output)")


def valid_set_times(contract: TokenContract, schema: dict, texts: list[str], tokenizer) -> list[float]:
    """Seconds of each valid-set computation along the outputs' own tokens."""
    times = []
    for text in texts:
        matcher = contract.schema_matcher(schema).matcher.deep_copy()
        for token_id in tokenizer.encode(text, add_special_tokens=False):
            start = time.perf_counter()
            contract._mask(matcher)
            times.append(time.perf_counter() - start)
            if not matcher.consume_token(token_id):
                break
    return times


def qwen_sized() -> None:
    import statistics
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from scale_bench import synthetic_tokenizer

    from tests.contract.pydantic_models import CASES

    tokenizer = synthetic_tokenizer()
    start = time.perf_counter()
    contract = TokenContract.from_tokenizer(tokenizer)
    built = time.perf_counter() - start
    rng = random.Random(3)
    all_times = []
    print(f"151,936-token vocabulary (synthetic byte-level BPE): contract built in {built:.1f} s")
    for name, schema, examples in CASES:
        start = time.perf_counter()
        contract.schema_matcher(schema)
        compiled = time.perf_counter() - start
        texts = [json.dumps(rng.choice(examples), indent=rng.choice([None, 2])) for _ in range(8)]
        times = valid_set_times(contract, schema, texts, tokenizer)
        all_times += times
        print(f"  {name:<34} grammar {compiled * 1e3:6.1f} ms; valid set median "
              f"{statistics.median(times) * 1e6:6.0f} us, p90 {sorted(times)[int(0.9 * len(times))] * 1e6:6.0f} us "
              f"({len(times)} positions)")
    print(f"  all schemas: median {statistics.median(all_times) * 1e6:.0f} us per valid set (target 100 us), "
          f"p90 {sorted(all_times)[int(0.9 * len(all_times))] * 1e6:.0f} us")


if __name__ == "__main__":
    main()
    scaling()
    qwen_sized()
