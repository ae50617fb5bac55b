"""Speed of `paratag tag` with the three shipped heads (topic, stance, NER on
one e5-small encoder pass) against NLI zero-shot plus an NER model for the
same codebook (datasets/codebooks/ukraine-heads.toml), side by side in one run,
on every fourth ukraine-aid article.

Speed does not depend on the weights, so without real checkpoints the NLI
model is a randomly initialised DeBERTa-v2 of mDeBERTa-v3-base's size (12
layers, hidden 768, 250k vocabulary) and the NER model a random XLM-R base
token classifier (the registry's default NER, Davlan/xlm-roberta-base-ner-hrl,
has that shape); the e5 tokenizer stands in for their SentencePiece one (same
vocabulary size). Run through `scripts/bench.sh --heads`.
"""
import json, os, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared", "datasets"))
CACHE = os.environ.get("PARATAG_CACHE", os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "paratag"))
HOME = os.environ.get("PARATAG_HOME", os.path.join(CACHE, "home"))
E5 = os.path.join(HOME, "models", "multilingual-e5-small")
HEADS = [os.path.join(ROOT, "models", "heads", h) for h in ("ukraine-topic", "ukraine-stance", "ukraine-ner")]
NLI = os.path.join(CACHE, "bench-random-mdeberta-v3-base")
NER = os.path.join(CACHE, "bench-random-xlm-roberta-base-ner")
BIN = os.path.join(ROOT, "target", "release", "paratag")
OUT = os.path.join(ROOT, "target", "bench-heads")


def random_nli():
    if os.path.exists(os.path.join(NLI, "model.safetensors")):
        return
    import torch
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification
    torch.manual_seed(0)
    cfg = DebertaV2Config(
        vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=512, relative_attention=True,
        position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
        pos_att_type=["p2c", "c2p"], layer_norm_eps=1e-7, max_relative_positions=-1,
        position_biased_input=False, type_vocab_size=0,
        id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
        label2id={"entailment": 0, "neutral": 1, "contradiction": 2},
    )
    os.makedirs(NLI, exist_ok=True)
    DebertaV2ForSequenceClassification(cfg).save_pretrained(NLI, safe_serialization=True)
    shutil.copy(os.path.join(E5, "tokenizer.json"), os.path.join(NLI, "tokenizer.json"))


def random_ner():
    if os.path.exists(os.path.join(NER, "model.safetensors")):
        return
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification
    torch.manual_seed(0)
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
    cfg = XLMRobertaConfig(
        vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
    )
    os.makedirs(NER, exist_ok=True)
    XLMRobertaForTokenClassification(cfg).save_pretrained(NER, safe_serialization=True)
    shutil.copy(os.path.join(E5, "tokenizer.json"), os.path.join(NER, "tokenizer.json"))


def main():
    for h in HEADS:
        if not os.path.isdir(h):
            sys.exit(f"bench_heads: {h} missing")
    random_nli()
    random_ner()
    os.makedirs(OUT, exist_ok=True)
    # Every fourth article (about 100 paragraphs): NLI is slow on 2 cores.
    corpus = os.path.join(OUT, "ukraine-aid-quarter.jsonl")
    with open(os.path.join(ROOT, "datasets", "ukraine-aid", "articles.jsonl"), encoding="utf-8") as f:
        lines = [l for i, l in enumerate(f) if i % 4 == 0]
    with open(corpus, "w", encoding="utf-8") as f:
        f.writelines(lines)
    cb = os.path.join(ROOT, "datasets", "codebooks", "ukraine-heads.toml")
    common = [BIN, "tag", corpus, "-c", cb, "-q", "--threads", str(os.cpu_count())]
    runs = {
        "heads": common + ["--heads", *HEADS, "-o", os.path.join(OUT, "heads.parquet")],
        "topic": common + ["--heads", HEADS[0], "--no-stance", "--no-ner", "-o", os.path.join(OUT, "topic.parquet")],
        "nli": common + ["--nli", NLI, "--ner", NER, "-o", os.path.join(OUT, "nli.parquet")],
    }
    best = {k: float("inf") for k in runs}
    for _ in range(2):  # alternating, best of 2
        for k, cmd in runs.items():
            t = time.perf_counter()
            subprocess.run(cmd, check=True)
            best[k] = min(best[k], time.perf_counter() - t)
    import polars as pl
    n = pl.read_parquet(os.path.join(OUT, "heads.parquet")).height
    print(f"| run ({n} ukraine-aid paragraphs, 7 topics, 1 gated stance target, NER; {os.cpu_count()} threads) | best of 2, s | paragraphs/s | speed vs NLI |")
    print("|---|---|---|---|")
    for k, label in [("nli", "NLI zero-shot (mDeBERTa-v3-base size: 7 topic passes + 2 stance passes where gated in) + NER (XLM-R base size)"),
                     ("heads", "topic + stance + NER heads on one e5-small pass"),
                     ("topic", "linear topic head alone (encoder pass only, no tuned layers)")]:
        print(f"| {label} | {best[k]:.1f} | {n / best[k]:.1f} | {best['nli'] / best[k]:.1f}x |")


if __name__ == "__main__":
    main()
