"""Which kernels a process runs on: the core type OpenBLAS selected (openblas_get_corename) and the
ISA oneDNN dispatches to (dnnl_get_effective_cpu_isa), each asked of the library this process has
loaded (read from /proc/self/maps), or of a library given by path. On some machines OpenBLAS picks
an old core type (e.g. Prescott or Haswell on a newer CPU); then the peer's figures are not
comparable. Used by bench/torch_peer.py (its own libraries) and by bench/run.sh for lockstep's
libdnnl: python3 bench/cpu_info.py onednn /path/to/libdnnl.so.2"""
import ctypes
import sys


def loaded_library(fragment):
    """Path of the first mapped shared object whose name contains fragment, or None."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if fragment in path.rsplit("/", 1)[-1] and ".so" in path:
                return path
    return None


def openblas_core(path=None):
    path = path or loaded_library("openblas")
    if path is None:
        return "no OpenBLAS loaded"
    lib = ctypes.CDLL(path)
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_config.restype = ctypes.c_char_p
    return f"{lib.openblas_get_corename().decode()} ({lib.openblas_get_config().decode().strip()}; {path})"


def onednn_isa(path=None):
    path = path or loaded_library("libdnnl")
    if path is None:
        return "no oneDNN loaded"
    lib = ctypes.CDLL(path)
    lib.dnnl_get_effective_cpu_isa.restype = ctypes.c_int
    lib.dnnl_cpu_isa2str.restype = ctypes.c_char_p
    lib.dnnl_cpu_isa2str.argtypes = [ctypes.c_int]
    return f"{lib.dnnl_cpu_isa2str(lib.dnnl_get_effective_cpu_isa()).decode()} ({path})"


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "onednn"
    lib = sys.argv[2] if len(sys.argv) > 2 else None
    print(onednn_isa(lib) if what == "onednn" else openblas_core(lib))
