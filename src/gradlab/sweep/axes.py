"""How a sweep figure draws a swept key: numbers on a numeric axis (log when the values span
more than a decade), lists and strings as categories in their sweep order, with short tick
labels (a sweep of ``model.sizes`` that varies one hidden width reads ``width 1, 2, 10``)."""

import ast
from dataclasses import dataclass

MAX_TICKS = 12  # category labels on an axis; more are thinned out


@dataclass
class Axis:
    """A swept key on a figure's x axis: where each of its values goes, and its labels."""

    label: str
    where: dict  # value (as the sweep table holds it) -> x
    ticks: list[tuple[float, str]]  # (x, label); empty: a numeric axis labels itself
    log: bool = False
    names: dict | None = None  # value -> its short label (legends)

    def name(self, value) -> str:
        return (self.names or {}).get(str(value), str(value))

    @property
    def categorical(self) -> bool:
        return bool(self.ticks)


def as_number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def as_list(v):
    """``"[1,2,1]"`` -> ``[1, 2, 1]`` (None: not a list)."""
    if isinstance(v, list):
        return v
    try:
        value = ast.literal_eval(str(v))
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, list | tuple) else None


def axis_of(key: str, values: list) -> Axis:
    """The axis of ``key`` whose values are ``values`` in sweep order (repeats allowed)."""
    order = list(dict.fromkeys(str(v) for v in values))
    numbers = [as_number(v) for v in order]
    if all(n is not None for n in numbers):
        distinct = sorted(set(numbers))
        if len(distinct) >= 3:  # a numeric axis: lines and bands between the values
            log = min(distinct) > 0 and max(distinct) / min(distinct) > 10
            return Axis(key, {v: n for v, n in zip(order, numbers, strict=True)}, [], log)
        order = sorted(order, key=as_number)  # two values: side by side, in numeric order
        labels = [f"{as_number(v):g}" for v in order]
        return _categories(key, order, labels)
    lists = [as_list(v) for v in order]
    if all(lst is not None for lst in lists):
        return _categories(*_list_labels(key, order, lists))
    return _categories(key, order, order)


def _categories(label: str, order: list[str], names: list[str]) -> Axis:
    every = -(-len(order) // MAX_TICKS)  # at most MAX_TICKS labels: readable
    ticks = [(i, names[i]) for i in range(0, len(order), every)]
    where = {v: i for i, v in enumerate(order)}
    return Axis(label, where, ticks, names=dict(zip(order, names, strict=True)))


def _list_labels(key: str, order: list[str], lists: list) -> tuple[str, list[str], list[str]]:
    """(axis label, the values, their tick labels) for list values: the one position that
    varies when only one does (``width`` for a hidden layer of ``model.sizes``, equal hidden
    widths counted as one), the number of hidden layers when only the depth varies."""
    sizes = key.endswith("sizes")
    if len({len(lst) for lst in lists}) == 1:
        varying = [i for i in range(len(lists[0])) if len({str(lst[i]) for lst in lists}) > 1]
        hidden = sizes and varying and all(0 < i < len(lists[0]) - 1 for i in varying)
        same = all(len({str(lst[i]) for i in varying}) == 1 for lst in lists)
        if varying and (len(varying) == 1 or (hidden and same)):
            name = "width" if hidden else f"{key}[{varying[0]}]"
            return name, order, [str(lst[varying[0]]) for lst in lists]
    elif sizes and all(len({str(w) for w in lst[1:-1]}) <= 1 for lst in lists):
        widths = {str(w) for lst in lists for w in lst[1:-1]}
        if len(widths) == 1:  # a depth sweep at one width
            return (
                f"hidden layers (width {widths.pop()})",
                order,
                [str(len(lst) - 2) for lst in lists],
            )
    return key, order, ["-".join(str(x) for x in lst) for lst in lists]
