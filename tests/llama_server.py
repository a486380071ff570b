"""llama.cpp's OpenAI-compatible server (``llama_cpp.server``), run as a test peer.

    python tests/llama_server.py --model PATH [llama_cpp.server's arguments]

It loads its model as parley's local worker does: without llama.cpp's extra buffer
types on a CPU that reports AMX, whose repacked kernels crash (see
``parleyd._models._llama``). Everything else is llama_cpp.server's own ``__main__``.
"""

import runpy

from parleyd._models._llama import cpu_flags, model_params, use_extra_buffers

if __name__ == "__main__":
    with model_params(use_extra_bufts=use_extra_buffers("auto", cpu_flags())):
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
