"""Units of vitals with ``pint``: parse a value and the unit a person typed, convert it to the
kind's canonical unit, refuse what cannot be right.

- ``parse_vital(kind, value, unit)`` → ``{"kind", "value", "unit", "entered"}`` in the canonical
  unit (blood pressure: ``{"systolic", "diastolic"}`` in mmHg), or ``VitalError`` with a stable
  ``code``: ``unknown_kind``, ``invalid_value`` (not a number), ``unknown_unit`` (pint does not
  know it, or it measures something else: ``5 m`` is no weight) and ``impossible_value`` (outside
  the kind's bounds — a heart rate of 500 — or a systolic pressure not above the diastolic).
- Canonical units, with their UCUM code for FHIR (``UCUM``): weight ``kg``, heart rate ``/min``
  (bpm), blood pressure ``mm[Hg]``, glucose ``mmol/L`` (mg/dL is converted with glucose's molar
  mass, 180.16 g/mol), body temperature ``Cel`` (°C; °F and K converted with pint's offset units).

One ``pint.UnitRegistry`` per process, built on first use (about a second): it only holds unit
definitions, never the app's data.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import pint

GLUCOSE_MOLAR_MASS = "180.16 g/mol"  # C6H12O6

# kind → canonical unit (pint), dimension it must have, bounds (canonical), decimals kept,
# UCUM code, label shown.
KINDS: dict[str, dict[str, Any]] = {
    "blood_pressure": {
        "unit": "mmHg",
        "dimension": "[pressure]",
        "bounds": {"systolic": (50, 300), "diastolic": (20, 200)},
        "decimals": 0,
        "ucum": "mm[Hg]",
        "label": "Blood pressure",
        "shown": "mmHg",
    },
    "heart_rate": {
        "unit": "bpm",
        "dimension": "[frequency]",
        "bounds": (20, 300),
        "decimals": 0,
        "ucum": "/min",
        "label": "Heart rate",
        "shown": "bpm",
    },
    "weight": {
        "unit": "kg",
        "dimension": "[mass]",
        "bounds": (0.5, 500),
        "decimals": 2,
        "ucum": "kg",
        "label": "Weight",
        "shown": "kg",
    },
    "glucose": {
        "unit": "mmol/L",
        "dimension": "[substance] / [volume]",
        "bounds": (0.5, 50),
        "decimals": 2,
        "ucum": "mmol/L",
        "label": "Glucose",
        "shown": "mmol/L",
    },
    "temperature": {
        "unit": "degC",
        "dimension": "[temperature]",
        "bounds": (30, 45),
        "decimals": 2,
        "ucum": "Cel",
        "label": "Temperature",
        "shown": "°C",
    },
}
# Other names people type for a kind.
KIND_ALIASES = {
    "bp": "blood_pressure",
    "blood-pressure": "blood_pressure",
    "bloodpressure": "blood_pressure",
    "pressure": "blood_pressure",
    "hr": "heart_rate",
    "heart-rate": "heart_rate",
    "heartrate": "heart_rate",
    "pulse": "heart_rate",
    "temp": "temperature",
    "sugar": "glucose",
    "blood_glucose": "glucose",
}
# Spellings pint does not know (UCUM codes, lower case), by kind; anything else goes to pint
# as typed (so ``lb``, ``kPa``, ``°F``, ``stone``, ``g`` … work).
UNIT_ALIASES: dict[str, dict[str, str]] = {
    "blood_pressure": {"mmhg": "mmHg", "mm[hg]": "mmHg", "kpa": "kPa"},
    "heart_rate": {
        "bpm": "bpm",
        "/min": "bpm",
        "1/min": "bpm",
        "beats/min": "bpm",
        "beats": "bpm",
        "{beats}/min": "bpm",
    },
    "weight": {"lbs": "lb", "st": "stone", "kgs": "kg"},
    "glucose": {"mg/dl": "mg/dL", "mmol/l": "mmol/L", "mmol": "mmol/L", "mg": "mg/dL"},
    "temperature": {
        "c": "degC",
        "°c": "degC",
        "cel": "degC",
        "celsius": "degC",
        "f": "degF",
        "°f": "degF",
        "[degf]": "degF",
        "fahrenheit": "degF",
        "k": "kelvin",
    },
}
UNIT_RE = re.compile(r"^[A-Za-z°µ\[\]{}_]{1,16}(/[A-Za-z°µ\[\]{}_]{1,16})?$|^1?/[A-Za-z]{1,8}$")
NUMBER_RE = re.compile(r"^[+-]?\d{1,6}(?:[.,]\d{1,4})?$")
BP_RE = re.compile(r"^(\d{1,6}(?:[.,]\d{1,4})?)/(\d{1,6}(?:[.,]\d{1,4})?)$")


class VitalError(ValueError):
    """A vital that cannot be recorded: ``code`` (stable) and a message for the person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@functools.cache
def registry() -> pint.UnitRegistry:
    """The process's unit registry, built on first use (pint's default definitions plus
    beats per minute)."""
    units = pint.UnitRegistry()
    units.define("beats_per_minute = 1 / minute = bpm")
    return units


def kind_of(text: str) -> str:
    """The canonical kind for what a person typed (``bp`` → ``blood_pressure``), else
    ``VitalError("unknown_kind")``."""
    name = (text or "").strip().lower()
    name = KIND_ALIASES.get(name, name)
    if name not in KINDS:
        raise VitalError(
            "unknown_kind",
            f"Unknown vital {text[:30]!r}: one of {', '.join(KINDS)}.",
        )
    return name


def _number(text: str) -> float:
    if not NUMBER_RE.match(text or ""):
        raise VitalError("invalid_value", f"{str(text)[:20]!r} is not a number.")
    number = float(text.replace(",", "."))
    if not math.isfinite(number):  # pragma: no cover - the pattern admits only finite numbers
        raise VitalError("invalid_value", f"{text[:20]!r} is not a number.")
    return number


def _unit(kind: str, text: str) -> pint.Unit:
    """The pint unit for ``text`` if it measures ``kind`` (else ``unknown_unit``)."""
    raw = (text or "").strip()
    spelled = UNIT_ALIASES[kind].get(raw.lower(), raw)
    units = registry()
    if not spelled or not UNIT_RE.match(spelled):
        raise _unknown_unit(kind, raw)
    try:
        unit = units.parse_units(spelled)
    except Exception:  # pint's parser raises many kinds of errors for odd text
        raise _unknown_unit(kind, raw) from None
    dimension = KINDS[kind]["dimension"]
    quantity = units.Quantity(1.0, unit)
    if kind == "glucose" and quantity.check("[mass] / [volume]"):
        return unit
    if not quantity.check(dimension):
        raise _unknown_unit(kind, raw)
    return unit


def _unknown_unit(kind: str, raw: str) -> VitalError:
    return VitalError(
        "unknown_unit",
        f"{raw[:20]!r} is not a unit of {KINDS[kind]['label'].lower()} "
        f"(e.g. {KINDS[kind]['shown']}).",
    )


def _convert(kind: str, number: float, unit: pint.Unit) -> float:
    units = registry()
    quantity = units.Quantity(number, unit)
    if kind == "glucose" and quantity.check("[mass] / [volume]"):
        quantity = quantity / units.Quantity(GLUCOSE_MOLAR_MASS)
    return float(quantity.to(KINDS[kind]["unit"]).magnitude)


def _within(kind: str, label: str, value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not low <= value <= high:
        shown = KINDS[kind]["shown"]
        raise VitalError(
            "impossible_value",
            f"A {label} of {value:g} {shown} is not possible (allowed {low:g}-{high:g} {shown}).",
        )


def parse_vital(kind_text: str, value_text: str, unit_text: str) -> dict[str, Any]:
    """A vital in its canonical unit: ``{"kind", "value", "unit", "entered": {"value",
    "unit"}, "basis"?}``; blood pressure's ``value`` is ``{"systolic", "diastolic"}``;
    glucose entered as a mass concentration has ``basis: "mass"`` (its FHIR export keeps
    mg/dL, LOINC 2339-0). Raises ``VitalError``."""
    kind = kind_of(kind_text)
    spec = KINDS[kind]
    value_text = (value_text or "").strip()
    unit = _unit(kind, unit_text)
    decimals = spec["decimals"]
    vital: dict[str, Any] = {
        "kind": kind,
        "unit": spec["shown"],
        "entered": {"value": value_text[:20], "unit": (unit_text or "").strip()[:20]},
    }
    if kind == "blood_pressure":
        match = BP_RE.match(value_text)
        if not match:
            raise VitalError(
                "invalid_value", "Blood pressure is written systolic/diastolic, e.g. 120/80."
            )
        systolic = _convert(kind, _number(match.group(1)), unit)
        diastolic = _convert(kind, _number(match.group(2)), unit)
        _within(kind, "systolic pressure", systolic, spec["bounds"]["systolic"])
        _within(kind, "diastolic pressure", diastolic, spec["bounds"]["diastolic"])
        if systolic <= diastolic:
            raise VitalError(
                "impossible_value", "The systolic pressure must be above the diastolic."
            )
        vital["value"] = {
            "systolic": round(systolic, decimals),
            "diastolic": round(diastolic, decimals),
        }
        return vital
    value = _convert(kind, _number(value_text), unit)
    _within(kind, spec["label"].lower(), value, spec["bounds"])
    vital["value"] = round(value, decimals) if decimals else round(value)
    if kind == "glucose" and registry().Quantity(1.0, unit).check("[mass] / [volume]"):
        vital["basis"] = "mass"
    return vital


def glucose_mg_dl(mmol_l: float) -> float:
    """A glucose concentration in mg/dL (for an export that keeps what was entered)."""
    units = registry()
    quantity = units.Quantity(mmol_l, "mmol/L") * units.Quantity(GLUCOSE_MOLAR_MASS)
    return round(float(quantity.to("mg/dL").magnitude), 1)


def shown(vital: dict[str, Any]) -> str:
    """A stored vital as a person reads it: ``120/80 mmHg``, ``70.5 kg``."""
    value = vital.get("value")
    unit = KINDS.get(vital.get("kind", ""), {}).get("shown", "")
    if isinstance(value, dict):
        return f"{value.get('systolic', 0):g}/{value.get('diastolic', 0):g} {unit}"
    return f"{value:g} {unit}" if isinstance(value, int | float) else "?"
