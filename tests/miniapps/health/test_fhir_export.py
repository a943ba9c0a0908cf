"""The FHIR R4 export in the SDK simulator: the bundle re-validates with ``fhir.resources.R4B``,
carries LOINC codes and UCUM units for vitals, medications, allergies, dependents and circle
members (RelatedPerson) and appointments; only the invoker's records; delivered as a file and as
the web view's ``export.fhir``."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.miniapps.health.records_fixtures import (
    DAY,
    DISCLAIMER,
    HOUR,
    START,
    app_module,
    join_circle,
    open_health,
)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture
def health(monkeypatch):
    return open_health(monkeypatch)


async def fill_records(health) -> dict:
    """Ann's records: every kind of vital, a medication with a taken dose, an allergy, a
    dependent, a circle member and two appointments (hers and her dependent's)."""
    sim, ann = health.sim, health.ann
    for text in (
        "weight 154 lb",
        "bp 120/80 mmHg",
        "heart_rate 72 bpm",
        "glucose 99 mg/dL",
        "glucose 5.4 mmol/L",
        "temperature 37.2 °C",
    ):
        await health.command(ann, f"/health vitals add {text}")
    await health.command(ann, "/health meds add Metformin 500 mg at 07:00,19:00")
    await sim.advance(hours=1, minutes=5)
    await health.press_notified(ann, sim.notifications(ann)[-1], "dose.taken")
    await health.command(ann, "/health allergies add penicillin hives severe")
    await health.command(ann, "/health dependent add Leo 2019-05-04 child")
    await join_circle(health, "vitals reminders")
    (leo,) = health.stored("dependents").values()
    appointments = {
        "ap-" + "1" * 20: {"user": ann.id},
        "ap-" + "2" * 20: {"dependent": leo["id"], "guardian": ann.id, "name": "Leo"},
    }
    for n, (appointment_id, patient) in enumerate(appointments.items()):
        start = START + (n + 2) * DAY
        doc = {
            "id": appointment_id,
            "practitioner": "u-doctor",
            "practitioner_name": "Dr. Ana Silva",
            "patient": patient,
            "patient_user": ann.id,
            "booked_by": ann.id,
            "start": start,
            "end": start + HOUR // 2,
            "status": "booked" if n == 0 else "cancelled",
            "cancel_reason": None if n == 0 else "patient",
        }
        status, _ = await sim.call_capability(
            ann,
            health.service(ann),
            "storage.put",
            {"collection": "appointments", "key": appointment_id, "value": doc},
        )
        assert status == "ok"
    # Bea's own vital: never in Ann's export.
    await health.command(health.bea, "/health vitals add weight 60 kg")
    return {"leo": leo}


def resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def loinc_codes(bundle: dict) -> set[str]:
    codes = set()
    for observation in resources(bundle, "Observation"):
        for coding in observation["code"]["coding"]:
            assert coding["system"] == LOINC
            codes.add(coding["code"])
        for component in observation.get("component", []):
            codes.update(c["code"] for c in component["code"]["coding"])
    return codes


async def test_the_export_file_is_a_valid_fhir_r4_bundle_with_loinc_codes(health):
    sim, ann = health.sim, health.ann
    extra = await fill_records(health)
    said = await health.command(ann, "/health export")
    card = health.last_card(ann)
    assert card["title"] == "Your health records (FHIR R4)" and DISCLAIMER in card["text"]
    assert card["buttons"] == [
        {"label": "Download", "style": "primary", "opens": "webview", "path": "#export"}
    ]
    assert "Observation: 6" in said and "Patient: 1" in said

    (media_id,) = sim.media_ids()
    media = sim.media(media_id)
    assert media["kind"] == "file" and media["name"].endswith(".fhir.json")
    stored = health.stored("exports")[ann.id]
    assert stored["media_id"] == media_id and stored["resources"]["Observation"] == 6

    validated = Bundle.model_validate_json(media["data"])  # re-validates with fhir.resources
    assert validated.type == "collection"
    bundle = json.loads(media["data"])
    assert loinc_codes(bundle) == {
        "29463-7",  # body weight
        "85354-9",  # blood pressure panel
        "8480-6",  # systolic
        "8462-4",  # diastolic
        "8867-4",  # heart rate
        "2339-0",  # glucose, mass/volume (entered in mg/dL)
        "15074-8",  # glucose, moles/volume
        "8310-5",  # body temperature
    }
    by_code = {o["code"]["coding"][0]["code"]: o for o in resources(bundle, "Observation")}
    assert by_code["29463-7"]["valueQuantity"] == {
        "value": 69.85,
        "unit": "kg",
        "system": UCUM,
        "code": "kg",
    }
    assert by_code["2339-0"]["valueQuantity"]["code"] == "mg/dL"
    assert by_code["2339-0"]["valueQuantity"]["value"] == pytest.approx(99, abs=1)
    assert by_code["15074-8"]["valueQuantity"]["code"] == "mmol/L"
    assert by_code["8867-4"]["valueQuantity"]["code"] == "/min"
    assert by_code["8310-5"]["valueQuantity"]["code"] == "Cel"
    systolic, diastolic = by_code["85354-9"]["component"]
    assert systolic["valueQuantity"]["value"] == 120 and diastolic["valueQuantity"]["value"] == 80
    assert systolic["valueQuantity"]["code"] == "mm[Hg]"
    assert by_code["8867-4"]["category"][0]["coding"][0]["code"] == "vital-signs"

    (patient,) = resources(bundle, "Patient")
    assert patient["name"] == [{"text": "Ann"}]
    assert patient["identifier"][0]["value"] == ann.id
    (med,) = resources(bundle, "MedicationStatement")
    assert med["status"] == "active" and med["medicationCodeableConcept"]["text"] == "Metformin"
    assert med["dosage"][0]["timing"]["repeat"]["timeOfDay"] == ["07:00:00", "19:00:00"]
    assert "100% of doses taken" in med["note"][0]["text"]
    (allergy,) = resources(bundle, "AllergyIntolerance")
    assert allergy["code"]["text"] == "penicillin" and allergy["criticality"] == "high"
    assert allergy["reaction"][0]["severity"] == "severe"
    related = resources(bundle, "RelatedPerson")
    (child,) = [r for r in related if r.get("birthDate")]
    assert child["relationship"][0]["coding"][0]["code"] == "CHILD"
    assert child["name"] == [{"text": "Leo"}] and child["birthDate"] == "2019-05-04"
    (member,) = [r for r in related if not r.get("birthDate")]
    assert member["name"] == [{"text": "Bea"}]
    appointments = sorted(resources(bundle, "Appointment"), key=lambda a: a["start"])
    assert [a["status"] for a in appointments] == ["booked", "cancelled"]
    assert appointments[0]["participant"][1]["actor"]["display"] == "Dr. Ana Silva"

    # Every reference points at an entry of the bundle; the patient is Ann, everywhere.
    urls = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    patient_url = next(u for u, r in urls.items() if r["resourceType"] == "Patient")
    text = json.dumps(bundle)
    for reference in {part.split('"')[0] for part in text.split('"reference": "')[1:]}:
        assert reference in urls, reference
    assert appointments[0]["participant"][0]["actor"]["reference"] == patient_url
    leo_url = appointments[1]["participant"][0]["actor"]["reference"]
    assert urls[leo_url]["resourceType"] == "RelatedPerson" and extra["leo"]["name"] == "Leo"
    # Only Ann's records: Bea's weight (60 kg) is not there.
    assert all(
        o.get("valueQuantity", {}).get("value") != 60 for o in resources(bundle, "Observation")
    )


async def test_the_web_view_answers_the_bundle_and_a_download_address(health):
    sim, ann = health.sim, health.ann
    await fill_records(health)
    answer = await health.view(ann, "export.fhir")
    assert answer["disclaimer"] == DISCLAIMER and answer["content_type"] == "application/fhir+json"
    assert answer["filename"].startswith("health-records-") and not answer["truncated"]
    Bundle.model_validate(answer["bundle"])
    status, body = sim.fetch_media_url(answer["media_url"])
    assert status == 200
    assert json.loads(body) == answer["bundle"]
    assert "8867-4" in loinc_codes(answer["bundle"])


async def test_an_empty_record_still_exports_a_valid_bundle(health):
    answer = await health.view(health.otto, "export.fhir")
    Bundle.model_validate(answer["bundle"])
    assert [e["resource"]["resourceType"] for e in answer["bundle"]["entry"]] == ["Patient"]
    assert answer["resources"] == {"Patient": 1}


async def test_a_large_record_keeps_the_newest_vitals_within_the_size_limit(health, monkeypatch):
    ann = health.ann
    for n in range(40):
        health.sim.now = START + n * HOUR
        await health.view(ann, "vitals.add", {"kind": "weight", "value": str(60 + n), "unit": "kg"})
    monkeypatch.setattr(app_module("fhir_export"), "BUNDLE_MAX_BYTES", 12_000)
    answer = await health.view(ann, "export.fhir")
    Bundle.model_validate(answer["bundle"])
    assert answer["truncated"] and 0 < answer["vitals_exported"] < 40
    assert len(json.dumps(answer["bundle"])) <= 13_000
    values = [o["valueQuantity"]["value"] for o in resources(answer["bundle"], "Observation")]
    assert max(values) == 99 and min(values) > 60  # the newest kept, the oldest left out


async def test_export_takes_no_arguments(health):
    assert "Usage: /health export" in await health.command(health.ann, "/health export now")
    assert health.sim.media_ids() == [] and health.written() == {}
