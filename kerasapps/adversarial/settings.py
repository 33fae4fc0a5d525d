"""``kerasapps attack``'s settings, parsed and checked before TensorFlow loads (no TensorFlow here).

Epsilons and step sizes are fractions of the input's pixel range, as the papers write them:
on 0..255 pixels, ``8/255`` moves each pixel by at most 8 levels and ``0.3`` by 76.5.

Example::

    settings = AttackSettings.parse(attacks="fgsm,pgd", epsilons="0,2/255,8/255", steps=40)
    settings.epsilons   # (0.0, 0.00784..., 0.0313...)
"""

from __future__ import annotations

import dataclasses
import fractions
import math
from typing import Optional

from kerasapps.errors import UsageError

ATTACK_NAMES = ("fgsm", "pgd")


def parse_fraction(text: str, what: str) -> float:
    """``"0.3"``, ``"8/255"`` or ``"1e-2"`` as a float; one readable error otherwise.

    Returns the value as a float.
    """
    text = text.strip()
    try:
        value = float(fractions.Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{what}: {text!r} is not a number (write 0.03 or 8/255)") from None
    if not math.isfinite(value):
        raise UsageError(f"{what}: {text!r} is not a finite number")
    return value


def parse_epsilons(text: str) -> tuple[float, ...]:
    """A comma-separated list of epsilons, each a fraction of the pixel range in [0, 1].

    Returns them in the order given, duplicates dropped.
    """
    values = []
    for part in text.split(","):
        if not part.strip():
            raise UsageError(f"--epsilon: empty entry in {text!r} (write e.g. 0,2/255,8/255)")
        value = parse_fraction(part, "--epsilon")
        if value < 0:
            raise UsageError(f"--epsilon: {part.strip()} is negative; an epsilon is a distance, 0 or more")
        if value > 1:
            raise UsageError(f"--epsilon: {part.strip()} is beyond the pixel range: epsilons are fractions of it "
                             "(0..1; 8/255 is 8 levels of 0..255 pixels)")
        if value not in values:
            values.append(value)
    return tuple(values)


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """What ``kerasapps attack`` does: attacks, epsilons (fractions of the pixel range), PGD's
    steps and step size (None: 2.5 * epsilon / steps), an optional target class (id or name),
    the example budget (None: the whole split), panels to draw, and the epsilon of the
    gradient-masking check (None: no check)."""

    attacks: tuple[str, ...] = ATTACK_NAMES
    epsilons: tuple[float, ...] = (0.0, 2 / 255, 4 / 255, 8 / 255)
    steps: int = 10
    step_size: Optional[float] = None
    target: Optional[str] = None
    examples: Optional[int] = None
    panels: int = 4
    check_epsilon: Optional[float] = 0.5
    seed: int = 0

    @classmethod
    def parse(cls, attacks: str = "fgsm,pgd", epsilons: str = "0,2/255,4/255,8/255", steps: int = 10,
              step_size: str | None = None, target: str | None = None, examples: int | None = None,
              panels: int = 4, check_epsilon: str | None = "0.5", seed: int = 0) -> "AttackSettings":
        """Settings from the command line's strings; every mistake is one :class:`UsageError`.

        Returns the checked :class:`AttackSettings`.
        """
        names = tuple(dict.fromkeys(name.strip().lower() for name in attacks.split(",")))
        unknown = [name for name in names if name not in ATTACK_NAMES]
        if unknown or not names:
            raise UsageError(f"--attack: unknown attack {', '.join(unknown) or repr(attacks)}; "
                             f"choose from {', '.join(ATTACK_NAMES)}")
        if steps < 1:
            raise UsageError(f"--steps: {steps}; PGD needs at least 1 step")
        size = None
        if step_size is not None:
            size = parse_fraction(step_size, "--step-size")
            if not 0 < size <= 1:
                raise UsageError(f"--step-size: {step_size} must be in (0, 1], a fraction of the pixel range")
        check = None
        if check_epsilon not in (None, "", "none", "off"):
            check = parse_fraction(check_epsilon, "--check-epsilon")
            if not 0 < check <= 1:
                raise UsageError(f"--check-epsilon: {check_epsilon} must be in (0, 1], a fraction of the pixel range")
        if examples is not None and examples < 1:
            raise UsageError(f"--examples: {examples}; attack at least 1 example")
        if panels < 0:
            raise UsageError(f"--panels: {panels} is negative")
        return cls(names, parse_epsilons(epsilons), steps, size, target, examples, panels, check, seed)


__all__ = ["ATTACK_NAMES", "AttackSettings", "parse_epsilons", "parse_fraction"]
