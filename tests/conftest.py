"""Shared test setup: CPU JAX, a persistent compilation cache for the session, parsed absl flags."""
import os
import tempfile

# Before JAX is imported anywhere: reuse compiled executables across tests and the subprocesses they start
# (CLI runs, resume after kill). Compiling a MobileNet train step costs ~1 min on 2 cores; loading it ~1 s.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "seg_jax_test_jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import flags  # noqa: E402

if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # Grain workers read absl flags
