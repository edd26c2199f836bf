"""SFT recipes: parsing with TRL's parser, the truncation guard, LLaMA-Factory export, the tiny recipe end to end."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import invoke, read, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "recipes").rglob("*.yaml") if not {"accelerate_configs", "teacher"} & set(p.parts)
)  # student recipes; tests/test_train_teacher.py parses the teacher's


def parse(path, *extra):
    from trl import ModelConfig, SFTConfig, TrlParser

    from rlt_data.train import DataArguments

    return TrlParser((DataArguments, SFTConfig, ModelConfig)).parse_args_and_config(args=["--config", str(ROOT / path), *extra])


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_parse_with_trl(recipe):
    # use_cpu: only because transformers refuses bf16 without a GPU at validation time
    data, training, model = parse(recipe, "--use_cpu", "true")
    assert data.dataset and model.model_name_or_path and training.completion_only_loss and not training.packing
    if "Qwen2.5" in recipe:
        assert (training.learning_rate, training.num_train_epochs, training.warmup_steps) == (1e-5, 3, 0.1)
        assert training.max_length == 16384 and training.bf16 and model.dtype == "bfloat16"
        assert training.per_device_train_batch_size * training.gradient_accumulation_steps * 8 == 96
        assert training.lr_scheduler_type.value == "cosine" and (training.adam_beta1, training.adam_beta2, training.adam_epsilon) == (0.9, 0.999, 1e-8)


def test_accelerate_configs_are_valid_yaml():
    import yaml

    configs = {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / "recipes" / "accelerate_configs").glob("*.yaml")}
    assert configs["zero3.yaml"]["deepspeed_config"]["zero_stage"] == 3
    assert configs["zero3_offload.yaml"]["deepspeed_config"]["offload_param_device"] == "cpu"
    assert configs["fsdp.yaml"]["distributed_type"] == "FSDP"


def test_length_guard_drops_or_refuses(tokenizer):
    from datasets import Dataset

    from rlt_data import protocol
    from rlt_data.errors import UserError
    from rlt_data.train import _ids, guard_lengths, to_prompt_completion

    rows = [protocol.training_messages("Q", "short", "S"), protocol.training_messages("Q", "long " * 400, "S")]
    ds = Dataset.from_list([{"messages": m} for m in rows]).map(to_prompt_completion).select_columns(["prompt", "completion"])
    lengths = [len(_ids(tokenizer.apply_chat_template(m, tokenize=True))) for m in rows]
    limit = (lengths[0] + lengths[1]) // 2
    kept = guard_lengths(ds, tokenizer, limit, "drop")
    assert len(kept) == 1 and kept[0]["completion"][0]["content"].count("long") == 0
    with pytest.raises(UserError, match="1 of 2 rows are longer than max_length"):
        guard_lengths(ds, tokenizer, limit, "error")
    empty = Dataset.from_list([{"prompt": rows[0][:2], "completion": []}])
    with pytest.raises(UserError, match="no row is left"):
        guard_lengths(empty, tokenizer, None, "drop")


def test_llamafactory_export(toy_run_dir):
    import datasets
    import yaml
    from typer.testing import CliRunner

    from rlt_data.cli import app

    result = CliRunner().invoke(app, ["export", str(toy_run_dir), "--format", "llamafactory"])
    assert result.exit_code == 0, result.output
    entry = json.loads((toy_run_dir / "dataset_info.json").read_text())["rlt_data"]
    # the fields LLaMA-Factory documents for a ShareGPT-formatted local dataset
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "conversations", "system": "system"}
    assert set(entry["tags"]) == {"role_tag", "content_tag", "user_tag", "assistant_tag"}
    folder = toy_run_dir / entry["file_name"]
    assert folder.is_dir() and list(folder.glob("*.parquet"))
    import pyarrow.parquet as pq

    table = pq.read_table(folder).to_pylist()
    for row in table:
        roles = [turn[entry["tags"]["role_tag"]] for turn in row[entry["columns"]["messages"]]]
        assert roles == [entry["tags"]["user_tag"], entry["tags"]["assistant_tag"]]
        assert row[entry["columns"]["system"]]
    # the entry, the card and `datasets` agree: the folder is the card's `sharegpt` config, whose dataset_info
    # lists the columns the entry names, and loading that config gives the same rows
    meta = yaml.safe_load((toy_run_dir / "README.md").read_text().split("---\n")[1])
    paths = {c["config_name"]: c["data_files"][0]["path"] for c in meta["configs"]}
    features = {i["config_name"]: [f["name"] for f in i["features"]] for i in meta["dataset_info"]}
    assert paths["sharegpt"] == f"{entry['file_name']}/train-*"
    assert set(entry["columns"].values()) <= set(features["sharegpt"])
    assert datasets.load_dataset(str(toy_run_dir), "sharegpt", split="train").to_list() == table
    hub = CliRunner().invoke(app, ["export", str(toy_run_dir), "--format", "llamafactory", "--name", "hub", "--hub-repo", "you/set"])
    assert hub.exit_code == 0, hub.output
    info = json.loads((toy_run_dir / "dataset_info.json").read_text())
    assert set(info) == {"rlt_data", "hub"}  # other entries are kept
    # LLaMA-Factory loads a Hub entry with load_dataset(hf_hub_url, name=subset, split=split)
    assert (info["hub"]["hf_hub_url"], info["hub"]["subset"], info["hub"]["split"]) == ("you/set", "sharegpt", "train")
    assert info["hub"]["subset"] in paths and info["hub"]["columns"] == entry["columns"]
    # the YAML snippet: LLaMA-Factory's data keys, with a cutoff_len that cuts no row (its default, 2048, would)
    from rlt_data.card import recommended_max_length

    longest = max(r["student_context_tokens"] for r in pq.read_table(toy_run_dir / "data").to_pylist())
    for name in ("rlt_data", "hub"):
        snippet = yaml.safe_load((toy_run_dir / f"llamafactory-{name}.yaml").read_text())
        assert snippet == {"dataset_dir": str(toy_run_dir.resolve()), "dataset": name, "cutoff_len": recommended_max_length(longest)}
        assert snippet["cutoff_len"] >= max(longest, 16384)
    assert "llamafactory-rlt_data.yaml" in result.output
    bad = CliRunner().invoke(app, ["export", str(toy_run_dir), "--format", "alpaca"])
    assert bad.exit_code == 2 and "unknown export format" in bad.output
    missing = CliRunner().invoke(app, ["export", str(toy_run_dir / "nope")])
    assert missing.exit_code == 2 and missing.output.startswith("Error:")


def card_trl_sft(run, student: str) -> list[str]:
    """The `trl sft` command the run's card gives (its ```bash block), for `student` and the folder."""
    line = next(line for line in (run / "README.md").read_text().splitlines() if line.startswith("trl sft "))
    return _fill(shlex.split(line)[2:], student, run)


def readme_trl_sft(run, student: str) -> list[str]:
    """The README's `trl sft` command (section "Train a student"), for `student` and the folder."""
    lines = re.findall(r"(?m)^\s*`?(trl sft [^`\n]*--dataset_name[^`\n]*)", (ROOT / "README.md").read_text())
    assert lines, "README.md gives no `trl sft ... --dataset_name ...` command"
    return _fill(shlex.split(lines[0])[2:], student, run)


def _fill(flags: list[str], student: str, run) -> list[str]:
    out = list(flags)
    out[out.index("--model_name_or_path") + 1] = student
    out[out.index("--dataset_name") + 1] = str(run)
    return out


# cheap settings of a test run; nothing that touches the rows
CHEAP = ["--max_steps", "1", "--report_to", "none", "--use_cpu", "true", "--logging_steps", "1", "--dataloader_num_workers", "0"]


def _trl_trainer(flags: list[str], output_dir, batch: int = 2):
    """TRL's own SFTTrainer as `trl sft FLAGS` builds it (its parser, its load, its trainer: trl/scripts/sft.py),
    without training: nothing from rlt-data touches the rows."""
    from datasets import load_dataset
    from trl import SFTTrainer
    from trl.scripts.sft import make_parser

    script, args, model, _ = make_parser().parse_args_and_config(
        args=[*flags, *CHEAP, "--output_dir", str(output_dir), "--per_device_train_batch_size", str(batch), "--save_strategy", "no"])
    args.model_init_kwargs = {"revision": model.model_revision, "trust_remote_code": args.trust_remote_code,
                              "attn_implementation": model.attn_implementation, "dtype": model.dtype, **(args.model_init_kwargs or {})}
    dataset = load_dataset(script.dataset_name, name=script.dataset_config, streaming=script.dataset_streaming)
    return SFTTrainer(model=model.model_name_or_path, args=args, train_dataset=dataset[script.dataset_train_split])


@pytest.mark.parametrize("assistant_only_loss", [False, True])
def test_stock_trl_trains_on_the_scored_student_context(toy_models, long_run, tmp_path, assistant_only_loss):
    """The card's `trl sft` flags (`load_dataset(RUN_DIR)`, TRL's SFTTrainer) on a run whose longest row is over
    TRL's default max_length (1,024): every row whole, token by token, as it was scored."""
    import datasets

    from rlt_data import protocol

    flags = card_trl_sft(long_run, toy_models["student"])
    assert "--max_length" in flags and "--assistant_only_loss" in flags
    flags[flags.index("--assistant_only_loss") + 1] = str(assistant_only_loss).lower()
    rows = datasets.load_dataset(str(long_run), split="train")
    trainer = _trl_trainer(flags, tmp_path / "out")
    tok = trainer.processing_class
    system = protocol.student_system_prompt()
    assert len(trainer.train_dataset) == len(rows) and max(rows["student_context_tokens"]) > 1024
    for source, row in zip(rows, trainer.train_dataset):
        ids, labels = row["input_ids"], row["labels"]
        text = tok.decode(ids)
        # exactly the student context that was scored (RLT_SPEC 3), whole: system prompt, question, assistant turn
        context = protocol.student_scoring_context(tok, source["question"], source["explanation"], source["solution"]).text
        assert text == context and ids == tok(context, add_special_tokens=False).input_ids
        assert len(ids) == source["student_context_tokens"]  # the card's token counts are TRL's
        assert text.startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{source['question']}<|im_end|>\n")
        trained = [i for i, label in enumerate(labels) if label != -100]
        assert [labels[i] for i in trained] == [ids[i] for i in trained]
        if not assistant_only_loss:
            assert trained == list(range(len(ids)))
            continue
        # only the assistant turn (and the <|im_end|> that ends it) carries labels: one contiguous block
        assert trained == list(range(trained[0], trained[-1] + 1))
        assert tok.decode(ids[trained[0] : trained[-1] + 1]) == source["messages"][2]["content"] + "<|im_end|>"
        assert tok.decode(ids[: trained[0]]).endswith(f"{source['question']}<|im_end|>\n<|im_start|>assistant\n")
        assert system in tok.decode(ids[: trained[0]])
    by_ids = {tuple(r["input_ids"]): r["labels"] for r in trainer.train_dataset}
    batch = next(iter(trainer.get_train_dataloader()))  # the collator keeps the labels TRL built (rows shuffled)
    for k, length in enumerate(batch["attention_mask"].sum(dim=1).tolist()):
        assert batch["labels"][k, :length].tolist() == by_ids[tuple(batch["input_ids"][k, :length].tolist())]
        assert (batch["labels"][k, length:] == -100).all()
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss == result.training_loss  # not NaN


def test_shipped_toy_templates_mark_the_assistant_turn(toy_models, tokenizer):
    """`{% generation %}` markers (for assistant_only_loss) render nothing: same text as plain ChatML."""
    from transformers import AutoTokenizer
    from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

    from rlt_data import protocol
    from rlt_data.testing import tiny

    plain = (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    messages = protocol.training_messages("What is 1 + 2?", "Add.", "3")
    for tok in [AutoTokenizer.from_pretrained(toy_models["teacher"]), AutoTokenizer.from_pretrained(toy_models["student"]), tokenizer]:
        assert tok.chat_template == tiny.CHATML_TEMPLATE and has_generation_markers(tok.chat_template)
        assert is_chat_template_stop_token_trained(tok)
        for msgs, gen in ((messages, False), (messages[:2], True), (messages[:1], False)):
            assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen) == tok.apply_chat_template(
                msgs, tokenize=False, add_generation_prompt=gen, chat_template=plain)
        out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        marked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
        assert tok.decode(marked) == messages[2]["content"] + "<|im_end|>"


def test_readme_trl_sft_line_is_the_cards(toy_models, long_run):
    """The README's `trl sft` line sets the same flags as the card's: a max_length that cuts no row."""
    readme, card = readme_trl_sft(long_run, "S"), card_trl_sft(long_run, "S")
    assert "--max_length" in readme
    assert int(readme[readme.index("--max_length") + 1]) >= max(r["student_context_tokens"] for r in read(long_run / "data"))
    assert readme == card


@pytest.mark.slow
def test_trl_sft_cli_on_a_run_folder(toy_models, long_run, tmp_path):
    """`trl sft` with the README's exact flags on a run folder, as a new user would run it: one step over every row
    trains on all their tokens (TRL's num_tokens), the row longer than TRL's default max_length (1,024) included."""
    rows = read(long_run / "data")
    out = tmp_path / "trl-sft"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "trl"), "sft", *readme_trl_sft(long_run, toy_models["student"]), *CHEAP,
         "--output_dir", str(out), "--per_device_train_batch_size", str(len(rows)), "--save_strategy", "steps", "--save_steps", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "model.safetensors").is_file()
    history = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())["log_history"]
    assert max(r["student_context_tokens"] for r in rows) > 1024
    assert history[0]["num_tokens"] == sum(r["student_context_tokens"] for r in rows)


@pytest.fixture(scope="module")
def long_run(toy_models, tmp_path_factory):
    """A run whose longest row is over 1,024 student tokens (TRL's default max_length): the toy world with one
    long question, the dummy backend (no weights: seconds)."""
    from rlt_data.testing import toy

    root = tmp_path_factory.mktemp("long_run")
    rows = [{"question": r["question"], "solution": r["solution"]} for r in toy.toy_rows(3, seed=5)]
    rows[1]["question"] += " Add the ones first, then the tens, and carry a ten when the ones make ten or more." * 14
    dataset = write_jsonl(root / "set.jsonl", rows)
    result = invoke("generate", "--preset", "toy", "--backend", "dummy", "--dataset", dataset, "--output", root / "run", "--num-samples", "2")
    assert result.exit_code == 0, result.output
    lengths = [r["student_context_tokens"] for r in read(root / "run" / "data")]
    assert len(lengths) == 3 and 1024 < max(lengths) < 2048  # the toy student's context is 2,048
    return root / "run"


@pytest.fixture(scope="module")
def toy_run_dir(toy_models, tmp_path_factory):
    from typer.testing import CliRunner

    from helpers import write_toy_set
    from rlt_data.cli import app

    root = tmp_path_factory.mktemp("train_run")
    dataset = write_toy_set(root / "set.jsonl", 12, 31)
    result = CliRunner().invoke(app, ["generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"],
                                      "--dataset", str(dataset), "--output", str(root / "run"), "--num-samples", "2",
                                      "--max-new-tokens", "120", "--keep", "all", "--kl-coefs", "0,0"])
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.mark.slow
def test_tiny_recipe_end_to_end(toy_models, toy_run_dir, tmp_path):
    out = tmp_path / "student"
    done = subprocess.run(
        [sys.executable, "-m", "rlt_data.train", "--config", str(ROOT / "recipes/tiny/config.yaml"), "--dataset", str(toy_run_dir),
         "--model_name_or_path", toy_models["student"], "--output_dir", str(out), "--max_steps", "30", "--learning_rate", "3e-3"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlt_data import protocol

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    from rlt_data.testing import toy

    question = toy.toy_rows(1, seed=999)[0]["question"]
    prompt = tok.apply_chat_template(protocol.training_messages(question, "", "")[:2], tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    gen = model.generate(**ids, max_new_tokens=20, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]
    text = tok.decode(gen[0, ids["input_ids"].shape[1]:])
    assert text.startswith("<|begin_of_thought|>"), text


def test_bad_dataset_is_one_line_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "rlt_data.train", "--config", str(ROOT / "recipes/tiny/config.yaml"),
                           "--dataset", str(tmp_path / "missing"), "--model_name_or_path", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("Error:")
