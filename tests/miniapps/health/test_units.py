"""Units of vitals (``units.py``, pint): conversions to the canonical unit, and refusals."""

from __future__ import annotations

import pytest

from tests.miniapps.health.records_fixtures import HEALTH_DIR, app_module, open_health


@pytest.fixture
def units(monkeypatch):
    open_health(monkeypatch)  # loads the app and its modules
    return app_module("units")


@pytest.mark.parametrize(
    ("kind", "value", "unit", "expected"),
    [
        ("weight", "154", "lb", 69.85),
        ("weight", "70", "kg", 70),
        ("weight", "11", "stone", 69.85),
        ("weight", "11", "st", 69.85),
        ("weight", "70500", "g", 70.5),
        ("heart_rate", "72", "bpm", 72),
        ("hr", "72", "/min", 72),
        ("pulse", "1.2", "Hz", 72),
        ("glucose", "5.4", "mmol/L", 5.4),
        ("glucose", "100", "mg/dL", 5.55),
        ("glucose", "90", "mg/dl", 5.0),
        ("temperature", "98.6", "°F", 37.0),
        ("temp", "98.6", "F", 37.0),
        ("temperature", "310.15", "K", 37.0),
        ("temperature", "36,6", "°C", 36.6),
    ],
)
def test_values_are_converted_to_the_canonical_unit(units, kind, value, unit, expected):
    vital = units.parse_vital(kind, value, unit)
    assert vital["value"] == pytest.approx(expected, abs=0.01)
    assert vital["entered"] == {"value": value, "unit": unit}
    assert vital["unit"] == units.KINDS[vital["kind"]]["shown"]


def test_blood_pressure_in_mmhg_and_kpa(units):
    assert units.parse_vital("bp", "120/80", "mmHg")["value"] == {"systolic": 120, "diastolic": 80}
    assert units.parse_vital("blood_pressure", "120/80", "mm[Hg]")["kind"] == "blood_pressure"
    kpa = units.parse_vital("blood_pressure", "16/10.7", "kPa")["value"]
    assert kpa == {"systolic": 120, "diastolic": 80}


def test_glucose_remembers_a_mass_concentration(units):
    assert units.parse_vital("glucose", "100", "mg/dL")["basis"] == "mass"
    assert "basis" not in units.parse_vital("glucose", "5.5", "mmol/L")
    assert units.glucose_mg_dl(5.55) == pytest.approx(100.0, abs=0.1)


@pytest.mark.parametrize(
    ("kind", "value", "unit", "code"),
    [
        ("weight", "70", "furlongs", "unknown_unit"),
        ("weight", "70", "m", "unknown_unit"),  # a length is no weight
        ("weight", "70", "xyz", "unknown_unit"),
        ("weight", "70", "kg)", "unknown_unit"),
        ("weight", "70", "2 kg", "unknown_unit"),
        ("weight", "70", "__class__", "unknown_unit"),
        ("heart_rate", "72", "kg", "unknown_unit"),
        ("glucose", "5", "mol", "unknown_unit"),  # an amount, not a concentration
        ("glucose", "5", "g", "unknown_unit"),
        ("temperature", "37", "C_x", "unknown_unit"),
        ("blood_pressure", "120/80", "kg", "unknown_unit"),
        ("weight", "70", "", "unknown_unit"),
        ("heart_rate", "500", "bpm", "impossible_value"),
        ("heart_rate", "19", "bpm", "impossible_value"),
        ("weight", "0.1", "kg", "impossible_value"),
        ("weight", "1200", "lb", "impossible_value"),  # 544 kg
        ("glucose", "60", "mmol/L", "impossible_value"),
        ("glucose", "2000", "mg/dL", "impossible_value"),
        ("temperature", "50", "°C", "impossible_value"),
        ("temperature", "0", "K", "impossible_value"),
        ("blood_pressure", "80/120", "mmHg", "impossible_value"),  # systolic below diastolic
        ("blood_pressure", "120/120", "mmHg", "impossible_value"),
        ("blood_pressure", "400/80", "mmHg", "impossible_value"),
        ("blood_pressure", "120/10", "mmHg", "impossible_value"),
        ("blood_pressure", "120", "mmHg", "invalid_value"),
        ("weight", "abc", "kg", "invalid_value"),
        ("weight", "nan", "kg", "invalid_value"),
        ("weight", "1e2", "kg", "invalid_value"),
        ("weight", "-70", "kg", "impossible_value"),
        ("height", "180", "cm", "unknown_kind"),
    ],
)
def test_bad_vitals_are_refused_with_a_code(units, kind, value, unit, code):
    with pytest.raises(units.VitalError) as refused:
        units.parse_vital(kind, value, unit)
    assert refused.value.code == code
    assert refused.value.message


def test_one_registry_per_process_loaded_once(units):
    assert units.registry() is units.registry()
    assert HEALTH_DIR.name == "health"
    assert units.shown({"kind": "weight", "value": 70.5}) == "70.5 kg"
    bp = {"kind": "blood_pressure", "value": {"systolic": 120, "diastolic": 80}}
    assert units.shown(bp) == "120/80 mmHg"
