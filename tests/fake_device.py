"""An emulated accelerator on the CPU, so that portability bugs surface on a machine without a GPU.

`install("cuda")` or `install("mps")` registers a device called `fakegpu` (PyTorch's PrivateUse1
backend, set up from Python; `register` alone does that part) and routes every operation through
`FakeAccelerator`, a TorchDispatchMode. Tensors on `fakegpu` are `DeviceTensor`s: wrapper
subclasses that report the device and keep their values in an ordinary CPU tensor, on which each
operation really runs.
Autograd, optimisers, modules, indexing and `.to()` work as on a real device. Enforced, with the
messages the real devices give:

- no operation mixes device tensors with CPU tensors of one or more dimensions (0-dim CPU tensors
  pass as scalars, as CUDA allows); a device tensor may be indexed with CPU indices, a CPU tensor
  may not be indexed with device indices;
- no random operation on the device is driven by a CPU `torch.Generator`;
- `.numpy()`, and so matplotlib, refuse device tensors (torch itself enforces this);
- "mps": no float64 tensor on the device, ever (created, converted or computed);
- "cuda": `torch.autocast("fakegpu", dtype=torch.bfloat16)` runs with CUDA's autocast op lists
  (lower precision for matmuls and convolutions, float32 for reductions, norms and losses, and
  `binary_cross_entropy` refused), registered below. `DGM_FAKE_CAPABILITY=7.5` emulates a T4,
  which has no native bf16: `get_device_capability` and `is_bf16_supported` say so.

It counts in `stats` what would stall the host on a real device: "syncs" (`.item()`, `float()`,
`bool()`, `.tolist()`, copies to the CPU, `nonzero` and boolean-mask indexing, `synchronize()`)
and "uploads" (copies from the CPU to the device), the bytes held by live device tensors
("live_bytes", "peak_bytes"), and each operation ("ops": one kernel launch on a real device) with
its FLOPs ("flops", by torch.utils.flop_counter's formulas).

Operations that exist only in the accelerators' kernels (the fused LSTM cell that `nn.LSTM` calls
there) run as Python on the CPU values (`_DEVICE_ONLY`).

Convolutions and matrix products of bf16 (or fp16) operands compute as a GPU's tensor cores do:
sums in float32, the result rounded to the operands' type (`_TENSOR_CORE`), which on a CPU without
bf16 instructions is also several times faster than computing them in bf16.

Limits: no speed, asynchrony, kernel selection or numerics of a real device (the slow bf16 path
of a T4 is not seen; only the policy that avoids it is tested), no operator gaps other than MPS's
float64, no device generators (`torch.Generator(device=...)` is not emulated: code draws device
randomness with `device=` from the seeded global generator), and the device's name is `fakegpu`,
not `cuda` or `mps`, so code must not test `device.type == "cuda"` (the course asks
`torch.get_device_module(device)` instead). Every operation passes through Python: emulated runs
are several times slower than plain CPU runs.
"""

import os
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten
from torch.utils.flop_counter import flop_registry

NAME = "fakegpu"
aten = torch.ops.aten
stats = {"syncs": 0, "uploads": 0, "live_bytes": 0, "peak_bytes": 0, "ops": 0, "flops": 0}
_storages: dict[int, list] = {}  # data_ptr of a CPU storage -> [bytes, live device tensors on it]
_INDEXING = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default,
             aten._index_put_impl_.default}
_SYNCS = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
          aten.unique_consecutive.default, aten._unique2.default, aten.unique_dim.default}


class DeviceRuleError(RuntimeError):
    """What the real device would have refused."""


class DeviceTensor(torch.Tensor):
    """A tensor that reports the emulated device and keeps its values in `elem` on the CPU."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        out = torch.Tensor._make_wrapper_subclass(
            cls, elem.shape, strides=elem.stride(), storage_offset=elem.storage_offset(),
            dtype=elem.dtype, layout=elem.layout, device=torch.device(NAME, 0),
            requires_grad=elem.requires_grad)
        out.elem = elem
        _track(out, elem)
        return out

    def __repr__(self):
        return f"DeviceTensor({self.elem!r}, device='{NAME}:0')"

    def tolist(self):
        stats["syncs"] += 1
        return self.elem.tolist()

    def __format__(self, spec):
        if self.dim() == 0:  # f"{loss:.3f}" reads the number back, as on a real device
            stats["syncs"] += 1
            return self.elem.item().__format__(spec)
        return self.elem.__format__(spec)

    def numpy(self, *, force=False):
        raise TypeError(f"can't convert {NAME}:0 device type tensor to numpy. Use Tensor.cpu() "
                        "to copy the tensor to host memory first.")

    def __array__(self, dtype=None, copy=None):
        return self.numpy()

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return NotImplemented  # FakeAccelerator, the mode, handles every operation


def _track(wrapper, elem):
    """Count each CPU storage's bytes once while any device tensor uses it."""
    storage = elem.untyped_storage()
    key = storage.data_ptr()
    entry = _storages.get(key)
    if entry is None:
        entry = _storages[key] = [storage.nbytes(), 0]
        stats["live_bytes"] += entry[0]
        stats["peak_bytes"] = max(stats["peak_bytes"], stats["live_bytes"])
    entry[1] += 1
    weakref.finalize(wrapper, _release, key)


def _release(key):
    entry = _storages.get(key)
    if entry is not None:
        entry[1] -= 1
        if entry[1] == 0:
            stats["live_bytes"] -= entry[0]
            del _storages[key]


def _unwrap(t):
    return t.elem if isinstance(t, DeviceTensor) else t


def _on_device(device) -> bool:
    return device is not None and torch.device(device).type == NAME


def _fused_lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    """The fused LSTM cell that nn.LSTM calls on an accelerator without cuDNN (no CPU kernel):
    (h, c, the activated gates i, f, g, o kept for the backward pass)."""
    gates = input_gates + hidden_gates
    if input_bias is not None:
        gates = gates + input_bias + hidden_bias
    i, f, g, o = gates.chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    cy = f * cx + i * g
    return o * cy.tanh(), cy, torch.cat([i, f, g, o], 1)


def _fused_lstm_cell_backward(grad_hy, grad_cy, cx, cy, workspace, has_bias):
    """Its backward pass: the gradients of the gates' pre-activations, of c_{t-1}, of the bias."""
    i, f, g, o = workspace.chunk(4, 1)
    tanh_cy = cy.tanh()
    grad_hy = torch.zeros_like(cy) if grad_hy is None else grad_hy
    grad_c = grad_hy * o * (1 - tanh_cy**2) + (0 if grad_cy is None else grad_cy)
    grad_gates = torch.cat([grad_c * g * i * (1 - i), grad_c * cx * f * (1 - f),
                            grad_c * i * (1 - g**2), grad_hy * tanh_cy * o * (1 - o)], 1)
    return grad_gates, grad_c * f, grad_gates.sum(0) if has_bias else None


_DEVICE_ONLY = {  # operations that exist only in the accelerators' kernels: run on the CPU values
    aten._thnn_fused_lstm_cell.default: _fused_lstm_cell,
    aten._thnn_fused_lstm_cell_backward_impl.default: _fused_lstm_cell_backward}


# computed as tensor cores do (the module's docstring)
_TENSOR_CORE = {aten.convolution.default, aten.convolution_backward.default, aten.mm.default,
                aten.addmm.default, aten.bmm.default, aten.baddbmm.default}


def _in_float32(func, *args, **kwargs):
    tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
    low = {t.dtype for t in tensors if t.is_floating_point()}
    if len(low) != 1 or not low <= {torch.bfloat16, torch.float16}:
        return func(*args, **kwargs)
    low = low.pop()
    wide = lambda t: t.float() if isinstance(t, torch.Tensor) and t.dtype == low else t
    out = func(*tree_map(wide, args), **tree_map(wide, kwargs))
    return tree_map(lambda t: t.to(low) if isinstance(t, torch.Tensor) and t.is_floating_point()
                    else t, out)


class FakeAccelerator(TorchDispatchMode):
    """Runs each operation on the CPU values and enforces the emulated device's rules."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat, spec = tree_flatten((args, kwargs))  # once: this runs for every operation
        target = kwargs.get("device")
        to_device = _on_device(target)
        if not to_device and not any(type(t) is DeviceTensor for t in flat):
            return func(*args, **kwargs)  # CPU work: nothing to emulate
        to_host = target is not None and not to_device
        self._check(func, args, kwargs, flat, to_device)
        is_copy = func in (aten._to_copy.default, aten.copy_.default)
        if func in _SYNCS or (is_copy and (to_host or type(args[0]) is not DeviceTensor)):
            stats["syncs"] += 1
        if is_copy and (to_device and type(args[0]) is not DeviceTensor
                        or func is aten.copy_.default and type(args[1]) is not DeviceTensor):
            stats["uploads"] += 1
        plain_args, plain_kwargs = tree_unflatten(
            [t.elem if type(t) is DeviceTensor else t for t in flat], spec)
        if to_device:
            plain_kwargs["device"] = torch.device("cpu")
        if func in _TENSOR_CORE:
            out = _in_float32(func, *plain_args, **plain_kwargs)
        else:
            out = _DEVICE_ONLY.get(func, func)(*plain_args, **plain_kwargs)
        stats["ops"] += 1  # one kernel launch on a real device
        count_flops = flop_registry.get(func._overloadpacket)
        if count_flops is not None:
            stats["flops"] += count_flops(*plain_args, **plain_kwargs, out_val=out)
        if to_host or func is aten._local_scalar_dense.default:
            return out  # a plain CPU tensor, or a Python number
        if func is aten.copy_.default and type(args[0]) is not DeviceTensor:
            return args[0]  # copied into a CPU tensor
        if isinstance(out, torch.Tensor):
            return self._wrap(func, out)
        return tree_map(lambda t: self._wrap(func, t), out)

    def _wrap(self, func, t):
        if not isinstance(t, torch.Tensor) or isinstance(t, DeviceTensor):
            return t
        if self.kind == "mps" and t.dtype == torch.float64:
            raise TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework "
                            f"doesn't support float64. Please use float32 instead. ({func})")
        return DeviceTensor(t)

    def _check(self, func, args, kwargs, flat, to_device):
        gen = kwargs.get("generator")
        if gen is not None and gen.device.type == "cpu":
            raise DeviceRuleError(
                f"Expected a '{self.kind}' device type for generator but found 'cpu' ({func}): "
                "draw device randomness with device=... instead of a CPU generator")
        if func in (aten._to_copy.default, aten.copy_.default) or to_device:
            return  # moving data between devices is what these do
        if func is aten.index.Tensor and not isinstance(args[0], DeviceTensor):
            raise DeviceRuleError(
                "indices should be either on cpu or on the same device as the indexed tensor "
                f"(cpu); here a CPU tensor was indexed with a tensor on {self.kind}")
        if func is aten.index.Tensor and any(i is not None and i.dtype == torch.bool
                                             for i in args[1]):
            stats["syncs"] += 1  # a boolean mask: the result's size comes back from the device
        for t in flat:
            if isinstance(t, torch.Tensor) and type(t) is not DeviceTensor and t.ndim > 0:
                if func in _INDEXING and t is not args[0]:
                    continue  # CUDA accepts CPU indices for a device tensor
                raise DeviceRuleError(
                    f"Expected all tensors to be on the same device, but found at least two "
                    f"devices, {self.kind}:0 and cpu! ({func} met a CPU tensor of shape "
                    f"{tuple(t.shape)})")


class _DeviceModule:
    """What `torch.fakegpu` answers, in the shape of `torch.cuda` / `torch.mps`."""

    def __init__(self, kind: str, capability: tuple[int, int]):
        self.kind, self.capability = kind, capability

    def is_available(self):
        return True

    def is_initialized(self):
        return True

    def _is_in_bad_fork(self):
        return False

    def device_count(self):
        return 1

    def current_device(self):
        return 0

    def manual_seed(self, seed):
        pass

    manual_seed_all = manual_seed

    def get_amp_supported_dtype(self):
        return [torch.float16, torch.bfloat16]

    def get_device_name(self, device=None):
        if self.kind == "mps":
            return "emulated Apple MPS"
        return f"emulated CUDA GPU (compute capability {self.capability[0]}.{self.capability[1]})"

    def get_device_capability(self, device=None):
        return self.capability if self.kind == "cuda" else (0, 0)

    def is_bf16_supported(self, including_emulation=False):
        return self.kind == "cuda" and self.capability >= (8, 0)

    def synchronize(self, device=None):
        stats["syncs"] += 1

    def max_memory_allocated(self, device=None):
        return stats["peak_bytes"]

    def memory_allocated(self, device=None):
        return stats["live_bytes"]

    def reset_peak_memory_stats(self, device=None):
        stats["peak_bytes"] = stats["live_bytes"]


# CUDA's autocast policy (aten/src/ATen/autocast_mode.cpp), for the emulated CUDA device.
LOWER_PRECISION = ["_convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                   "conv_transpose2d", "conv_transpose3d", "convolution", "prelu", "addmm",
                   "addmv", "addr", "matmul", "einsum", "mm", "mv", "linear", "addbmm", "baddbmm",
                   "bmm", "chain_matmul", "linalg_multi_dot", "scaled_dot_product_attention"]
FLOAT32 = ["acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
           "reciprocal", "rsqrt", "sinh", "tan", "pow", "softplus", "layer_norm",
           "native_layer_norm", "group_norm", "frobenius_norm", "nuclear_norm",
           "cosine_similarity", "poisson_nll_loss", "cosine_embedding_loss", "nll_loss",
           "nll_loss2d", "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss",
           "huber_loss", "mse_loss", "margin_ranking_loss", "multilabel_margin_loss",
           "soft_margin_loss", "triplet_margin_loss", "multi_margin_loss",
           "binary_cross_entropy_with_logits", "dist", "pdist", "cdist", "renorm", "logsumexp",
           "prod", "softmax", "log_softmax", "cumprod", "cumsum", "linalg_vector_norm", "sum"]
_libraries: list = []


def _register_autocast() -> None:
    """Kernels for the AutocastPrivateUse1 key: cast floating device inputs as CUDA would."""
    everything = torch.library.Library("_", "IMPL")
    everything.fallback(torch.library.fallthrough_kernel, "AutocastPrivateUse1")
    lib = torch.library.Library("aten", "IMPL")
    _libraries.extend([everything, lib])  # a Library unregisters its kernels when collected
    exclude = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastPrivateUse1)

    def kernel(op, lower):
        def run(*args, **kwargs):
            low = torch.get_autocast_dtype(NAME)
            to = low if lower else torch.float32

            def cast(t):
                if (isinstance(t, torch.Tensor) and t.is_floating_point()
                        and t.device.type == NAME and t.dtype != torch.float64
                        and (lower or t.dtype == low)):
                    return t.to(to)
                return t
            with torch._C._ExcludeDispatchKeyGuard(exclude):
                return op(*tree_map(cast, args), **tree_map(cast, kwargs))
        return run

    def banned(*args, **kwargs):
        raise RuntimeError("torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are "
                           "unsafe to autocast. Many models use a sigmoid layer right before the "
                           "binary cross entropy layer. In this case, combine the two layers "
                           "using torch.nn.functional.binary_cross_entropy_with_logits")

    for names, lower in ((LOWER_PRECISION, True), (FLOAT32, False)):
        for name in names:
            packet = getattr(aten, name)
            for overload in packet.overloads():
                if "out" in overload:
                    continue
                lib.impl(f"{name}.{overload}" if overload != "default" else name,
                         kernel(getattr(packet, overload), lower), "AutocastPrivateUse1")
    lib.impl("binary_cross_entropy", banned, "AutocastPrivateUse1")


def _register_backend(module: _DeviceModule) -> None:
    """PrivateUse1 named `fakegpu`, with kernels for the few paths that skip the mode."""
    from torch.utils.backend_registration import _setup_privateuseone_for_python_backend

    _setup_privateuseone_for_python_backend(rename=NAME, backend_module=module)
    lib = torch.library.Library("aten", "IMPL")
    _libraries.append(lib)

    def empty_strided(size, stride, dtype=None, layout=None, device=None, pin_memory=None):
        return DeviceTensor(torch.empty_strided(size, stride, dtype=dtype))

    def empty(size, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
        return DeviceTensor(torch.empty(size, dtype=dtype))

    def copy_from(src, dst, non_blocking=False):
        _unwrap(dst).copy_(_unwrap(src))
        return dst

    lib.impl("empty_strided", empty_strided, "PrivateUse1")
    lib.impl("empty.memory_format", empty, "PrivateUse1")
    lib.impl("_copy_from", copy_from, "PrivateUse1")


_state: dict = {}


def register(kind: str = "cuda") -> None:
    """Register the emulated device with PyTorch, as `kind` ("cuda" or "mps"); once per process,
    later calls only switch the kind. It must come before the process's first backward pass,
    even one on the CPU: autograd sizes its per-device queues then (tests/conftest.py does it)."""
    if kind not in ("cuda", "mps"):
        raise ValueError(f"DGM_EMULATE can be 'cuda' or 'mps', not {kind!r}")
    capability = tuple(int(v) for v in os.environ.get("DGM_FAKE_CAPABILITY", "9.0").split("."))
    module = _DeviceModule(kind, capability)
    if "module" in _state:
        _state["module"].__dict__.update(module.__dict__)
        return
    _register_backend(module)
    _register_autocast()
    _state["module"] = module


def install(kind: str) -> FakeAccelerator:
    """Emulate `kind` ("cuda" or "mps") from now on in this process, e.g. a notebook's kernel.
    Sets DGM_DEVICE so that `helpers.runtime` picks the emulated device."""
    register(kind)
    mode = FakeAccelerator(kind)
    mode.__enter__()
    _state["mode"] = mode
    os.environ["DGM_DEVICE"] = NAME
    return mode


def uninstall() -> None:
    """Leave the emulation (the device stays registered, unused)."""
    mode = _state.pop("mode", None)
    if mode is not None:
        mode.__exit__(None, None, None)
    os.environ.pop("DGM_DEVICE", None)
