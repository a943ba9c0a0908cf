"""The ``ai`` capability's host side: the platform's model, for every mini-program, metered.

A model answer takes longer than an invocation may last (3 s), so ``ai.chat`` is asynchronous,
like a payment: the call is checked and answered with a request id at once, the completion runs
in the background on this node, and its outcome reaches the app as the signed host event
``ai.completed``. The parts, one module each:

- ``settings``: what the operator set (``AI_*``): the server, the model, the budgets;
- ``client``: the ``openai`` package's ``AsyncOpenAI`` against any OpenAI-compatible server,
  our own retries (``retry-after`` honoured) and the assembly of streamed deltas — content and
  tool calls arriving in fragments;
- ``prompt``: an app's checked messages made into the model's request (images as data URLs);
- ``budgets``: tokens per app per day, per conversation per day, per user per hour;
- ``runner``: one background task per request, cancellable from any node;
- ``service``: ``Ai``, what the capabilities (``capabilities.ai``) and the host call;
- ``usage``: what administrators read of the usage.
"""
