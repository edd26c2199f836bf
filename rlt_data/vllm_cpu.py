"""vLLM colocated with TRL's GRPO on a CPU: the weights the trainer syncs must stay loadable.

Only for CPU runs of ``train-teacher grpo --use_vllm true --vllm_mode colocate`` (the tiny recipe
``recipes/teacher/tiny/grpo_vllm.yaml`` and ``tests/test_teacher_vllm.py``); nothing happens on
other platforms, where vLLM does not repack the weights. It goes the day vLLM's CPU backend keeps
a linear layer's weight loadable after packing it (the test checks that it still needs this).
"""

from __future__ import annotations

from typing import Any


def live_weights(model_path: str) -> None:
    """Let TRL's colocated weight sync reach vLLM's CPU backend; nothing on other platforms.

    After loading, vLLM on CPU packs each linear layer's weight for its GEMM kernel and replaces the
    parameter with an empty one that has no ``weight_loader`` (``UnquantizedLinearMethod.
    process_weights_after_loading`` -> ``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``),
    so TRL's ``model.load_weights([(name, param)])`` fails at the first sync; the LM head keeps its
    weight but multiplies by a copy packed at load time. Through vLLM's ``ModelRegistry`` (its
    interface for out-of-tree models), the model's architecture gets a subclass of vLLM's own class
    that sets vLLM's per-layer ``_cpu_skip_gemm_dispatch`` on every linear layer (``F.linear`` on the
    live weight, as vLLM does for MLA's ``kv_b_proj``) and repacks the LM head when its weight is
    loaded again. No library code is changed; the colocated engine is in this process.
    """
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    from transformers import AutoConfig
    from vllm import ModelRegistry
    from vllm.model_executor.layers.linear import LinearBase

    for arch in AutoConfig.from_pretrained(model_path).architectures or []:
        if arch not in ModelRegistry.models:
            continue
        base = ModelRegistry.models[arch].load_model_cls()
        if getattr(base, "rlt_live_weights", False):
            continue

        class LiveWeights(base):  # type: ignore[misc, valid-type]
            rlt_live_weights = True

            def __init__(self, *, vllm_config: Any, prefix: str = ""):
                super().__init__(vllm_config=vllm_config, prefix=prefix)
                for module in self.modules():
                    if isinstance(module, LinearBase):
                        module._cpu_skip_gemm_dispatch = True

            def load_weights(self, weights: Any) -> Any:
                loaded = super().load_weights(weights)
                head = getattr(self, "lm_head", None)
                if hasattr(head, "cpu_linear") and any(n.endswith(("embed_tokens.weight", "lm_head.weight")) for n in loaded or ()):
                    head.quant_method.process_weights_after_loading(head)  # re-pack the (tied) output layer
                return loaded

        LiveWeights.__name__ = LiveWeights.__qualname__ = f"LiveWeights{base.__name__}"
        ModelRegistry.register_model(arch, LiveWeights)
