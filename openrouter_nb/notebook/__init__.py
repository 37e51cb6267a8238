"""The notebook layer: magics, the streaming answer display and widgets.

The only layer that imports IPython and ipywidgets. ``magics`` and ``display`` import
IPython only; ``widgets`` imports ipywidgets and is loaded when a widget is first made.
"""
