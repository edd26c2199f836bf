"""SFT recipes: parsing with TRL's parser, the truncation guard, LLaMA-Factory export, the tiny recipe end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    bad = CliRunner().invoke(app, ["export", str(toy_run_dir), "--format", "alpaca"])
    assert bad.exit_code == 2 and "unknown export format" in bad.output
    missing = CliRunner().invoke(app, ["export", str(toy_run_dir / "nope")])
    assert missing.exit_code == 2 and missing.output.startswith("Error:")


def _trl_trainer(student: str, dataset, output_dir, assistant_only_loss: bool):
    """TRL's own SFTTrainer with stock settings, as `trl sft` builds it: nothing from rlt-data touches the rows."""
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(output_dir), assistant_only_loss=assistant_only_loss, max_steps=1, per_device_train_batch_size=2,
        max_length=4096, report_to="none", use_cpu=True, save_strategy="no", logging_steps=1, dataloader_num_workers=0,
    )
    return SFTTrainer(model=student, args=args, train_dataset=dataset, processing_class=AutoTokenizer.from_pretrained(student))


@pytest.mark.parametrize("assistant_only_loss", [False, True])
def test_stock_trl_trains_on_the_scored_student_context(toy_models, toy_run_dir, tmp_path, assistant_only_loss):
    """The real client: `load_dataset(RUN_DIR)` (what `trl sft --dataset_name RUN_DIR` loads) into TRL's SFTTrainer."""
    import datasets

    from rlt_data import protocol

    rows = datasets.load_dataset(str(toy_run_dir), split="train")
    trainer = _trl_trainer(toy_models["student"], rows, tmp_path / "out", assistant_only_loss)
    tok = trainer.processing_class
    system = protocol.student_system_prompt()
    assert len(trainer.train_dataset) == len(rows)
    for source, row in zip(rows, trainer.train_dataset):
        ids, labels = row["input_ids"], row["labels"]
        text = tok.decode(ids)
        # exactly the student context that was scored (RLT_SPEC 3): system prompt, question, assistant turn
        assert text == protocol.student_scoring_context(tok, source["question"], source["explanation"], source["solution"]).text
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


@pytest.mark.slow
def test_trl_sft_cli_on_a_run_folder(toy_models, toy_run_dir, tmp_path):
    """`trl sft --dataset_name RUN_DIR` with no other data flag, as a new user would run it."""
    out = tmp_path / "trl-sft"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "trl"), "sft", "--model_name_or_path", toy_models["student"], "--dataset_name", str(toy_run_dir),
         "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "2", "--report_to", "none",
         "--use_cpu", "true", "--save_strategy", "no", "--assistant_only_loss", "true"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "model.safetensors").is_file()


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
    from rlt_data import toy

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
