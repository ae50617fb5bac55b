"""Speed of `paratag tag` with trained heads (one encoder pass) against NLI
zero-shot for the same codebook, side by side in one run.

Speed does not depend on the weights, so without a real NLI checkpoint the
NLI model is a randomly initialised DeBERTa-v2 of mDeBERTa-v3-base's size
(12 layers, hidden 768, 250k vocabulary; the e5 tokenizer stands in for its
SentencePiece one, same vocabulary size). Run through `scripts/bench.sh --heads`
after `scripts/quality.sh` (which trains the SIB-200 topic head).
"""
import json, os, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared", "datasets"))
CACHE = os.environ.get("PARATAG_CACHE", os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "paratag"))
HOME = os.environ.get("PARATAG_HOME", os.path.join(CACHE, "home"))
E5 = os.path.join(HOME, "models", "multilingual-e5-small")
HEAD = os.path.join(ROOT, "target", "quality", "heads", "sib200-topic")
NLI = os.path.join(CACHE, "bench-random-mdeberta-v3-base")
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


def main():
    if not os.path.isdir(HEAD):
        sys.exit(f"bench_heads: {HEAD} missing; run scripts/quality.sh first")
    random_nli()
    os.makedirs(OUT, exist_ok=True)
    corpus = os.path.join(OUT, "sib200-eng-test.jsonl")
    with open(os.path.join(SHARED, "sib200", "eng_Latn", "test.tsv"), encoding="utf-8") as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:]
    with open(corpus, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r[0], "text": r[2]}, ensure_ascii=False) + "\n")
    cb = os.path.join(ROOT, "datasets", "codebooks", "sib200.toml")
    common = [BIN, "tag", corpus, "-c", cb, "--no-segment", "--no-ner", "-q", "--threads", str(os.cpu_count())]
    runs = {
        "heads": common + ["--heads", HEAD, "-o", os.path.join(OUT, "heads.parquet")],
        "nli": common + ["--nli", NLI, "-o", os.path.join(OUT, "nli.parquet")],
    }
    best = {k: float("inf") for k in runs}
    for _ in range(2):  # alternating, best of 2
        for k, cmd in runs.items():
            t = time.perf_counter()
            subprocess.run(cmd, check=True)
            best[k] = min(best[k], time.perf_counter() - t)
    n = len(rows)
    print(f"| run ({n} SIB-200 eng test sentences, 7 topics, {os.cpu_count()} threads) | best of 2, s | paragraphs/s | speed vs NLI |")
    print("|---|---|---|---|")
    for k, label in [("nli", "NLI zero-shot, mDeBERTa-v3-base size (7 passes per paragraph)"),
                     ("heads", "trained topic head on e5-small (1 pass per paragraph)")]:
        print(f"| {label} | {best[k]:.1f} | {n / best[k]:.1f} | {best['nli'] / best[k]:.1f}x |")


if __name__ == "__main__":
    main()
