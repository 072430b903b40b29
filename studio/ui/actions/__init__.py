"""The window's actions: one module per menu (as napari's `_qt/_qapp_model/qactions/`), one enabled table.

`spec.py` describes an action (`ActionSpec`) and what the actions act on (`ActionTarget`, the main
window); each menu module (`file_menu`, `run_menu`, `view_menu`, `help_menu`) lists its actions and
builds its menu; `window_actions.WindowActions` makes them all, by name, and enables each from
`ENABLED[state]` (and what it needs of the shown run) whenever the run controller's state changes.
"""
