"""``rlt-data evaluate --update-card / --push-to-hub REPO``: results into a model card's ``model-index``.

The card is the model folder's ``README.md`` when MODEL is a local folder, otherwise
``OUTPUT/README.md`` (started from the Hub model's card when it can be read). Results of the same
benchmark and metric already in the card are replaced; every other entry is kept. The token is
passed to the Hub client only: never printed, never written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .errors import UserError, first_line

METRIC = "pass@1"


def eval_results(results: dict[str, Any]) -> list:
    from huggingface_hub import EvalResult

    entries = []
    for name, r in results["results"].items():
        p = r["parameters"]
        local = p.get("source") == "local"
        sampling = "greedy" if p["temperature"] == 0 else f"temperature {p['temperature']}, top-p {p['top_p']}"
        entries.append(
            EvalResult(
                task_type="text-generation",
                task_name="Text Generation",
                dataset_type=name if local else p["dataset"],
                dataset_name=r["title"],
                dataset_config=None if local else p["subset"],
                dataset_split=None if local else p["split"],
                metric_type=METRIC,
                metric_name=f"pass@1 ({p.get('preset', 'skythought')} preset, {p.get('extraction', 'strict')} extraction, "
                            f"{p['num_samples']} sample{'s' if p['num_samples'] > 1 else ''}, {sampling}, "
                            f"max {p['max_new_tokens']} new tokens)",
                metric_value=round(100 * r["pass@1"], 2),
            )
        )
    return entries


def render_card(existing: str | None, model_name: str, results: dict[str, Any]) -> str:
    from huggingface_hub import ModelCard

    card = ModelCard(existing) if existing and existing.strip() else ModelCard(f"---\nlibrary_name: transformers\n---\n\n# {model_name}\n")
    new = eval_results(results)
    replaced = {(e.dataset_type, e.metric_type) for e in new}
    kept = [e for e in (card.data.eval_results or []) if (e.dataset_type, e.metric_type) not in replaced]
    card.data.eval_results = kept + new
    card.data.model_name = card.data.model_name or model_name
    return str(card)


def update_card(config, results: dict[str, Any], out: Path, echo: Callable[[str], None]) -> Path:
    model_dir = Path(config.model).expanduser()
    if model_dir.is_dir():
        path = model_dir / "README.md"
        existing = path.read_text("utf-8") if path.exists() else None
    else:
        path = out / "README.md"
        existing = path.read_text("utf-8") if path.exists() else _hub_card(config.model, config.token)
    name = model_dir.name if model_dir.is_dir() else config.model.split("/")[-1]
    text = render_card(existing, name, results)
    from .shards import write_text

    write_text(path, text)
    echo(f"model card: {path} (model-index: {len(results['results'])} result(s))")
    if config.push_to_hub:
        _push_card(path, config.push_to_hub, config.token, echo)
    return path


def _hub_card(repo_id: str, token: str | None) -> str | None:
    try:
        from huggingface_hub import ModelCard

        return str(ModelCard.load(repo_id, token=token))
    except Exception:  # no card yet, or offline: start a new one
        return None


def _push_card(path: Path, repo_id: str, token: str | None, echo: Callable[[str], None]) -> None:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
        api.upload_file(
            path_or_fileobj=str(path), path_in_repo="README.md", repo_id=repo_id, repo_type="model",
            commit_message="Add evaluation results (rlt-data evaluate)",
        )
    except Exception as exc:
        from .hub import friendly_hub_error

        friendly = friendly_hub_error(exc, repo_id)
        if friendly is not None:
            raise friendly
        first = first_line(exc)
        raise UserError(f"cannot push the model card to {repo_id}: {first}")
    echo(f"pushed the model card to {repo_id}")
