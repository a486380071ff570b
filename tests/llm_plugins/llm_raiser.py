"""A test plugin for llm: models that stream a little, then raise, as a broken plugin does.

``raiser`` has only a sync model (the daemon runs it in a worker process); ``raiser-async``
has an async one too (run in the daemon's event loop).
"""

import llm


@llm.hookimpl
def register_models(register):
    register(Raiser())
    register(RaiserSync(), RaiserAsync())


class Raiser(llm.Model):
    model_id = "raiser"
    can_stream = True

    def execute(self, prompt, stream, response, conversation=None):
        yield "partial "
        yield "output"
        raise RuntimeError("the plugin broke mid-stream")


class RaiserSync(Raiser):
    model_id = "raiser-async"


class RaiserAsync(llm.AsyncModel):
    model_id = "raiser-async"
    can_stream = True

    async def execute(self, prompt, stream, response, conversation=None):
        yield "partial "
        yield "output"
        raise RuntimeError("the plugin broke mid-stream")
