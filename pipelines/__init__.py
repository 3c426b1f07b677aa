"""Steps that turn features into results: train, evaluate a fold.

Pipelines import only ``moodops.components``; they report progress through
:class:`~moodops.pipelines.hooks.Hooks`, never to a tracker directly.
"""
