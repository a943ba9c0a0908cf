"""Export a person's own records as a FHIR R4 ``Bundle`` (type ``collection``), built and
validated with ``fhir.resources.R4B`` (the R4 line of the package; its default is R5).

- ``Patient`` (the person, their display name when they share it), ``Observation`` per vital
  (LOINC code, UCUM unit; category ``vital-signs``, glucose ``laboratory``): blood pressure as
  the panel 85354-9 with systolic 8480-6 and diastolic 8462-4 components, heart rate 8867-4,
  body weight 29463-7, body temperature 8310-5, glucose 15074-8 in mmol/L — or 2339-0 in mg/dL
  when it was entered as a mass concentration; ``MedicationStatement`` per medication (dose
  times as ``timing.repeat.timeOfDay``, the last 30 days' adherence as a note);
  ``AllergyIntolerance``; ``RelatedPerson`` for dependents (v3 RoleCode relationship, birth
  date) and care-circle members; ``Appointment`` from ``booking.appointments_of`` when the app's
  booking module provides it.
- Resource ids and ``fullUrl`` are stable ``urn:uuid`` names (UUID 5 of the stored keys);
  references point at the ``fullUrl``. Observations beyond ``BUNDLE_MAX_BYTES`` of JSON are
  left out oldest first (``truncated``), so a bundle always fits a view answer.
- ``/health export``: the bundle as a file (``media.upload``, ``application/fhir+json``), the
  invoker told privately with a card whose **Download** button opens the web view's export.
  The SDK cannot attach a file to a card or a service message (a card's ``image`` is an image
  only), so the file is reached through the web view: view ``export.fhir`` answers the bundle
  itself (the page saves it) and a fresh signed address of the file (``media.url``).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import adherence
import circle
import clock
import records
import units

from sdk import Button, Card, Field, HostError, Reply

log = logging.getLogger("app.health.fhir_export")

EXPORTS = "exports"
CONTENT_TYPE = "application/fhir+json"
BUNDLE_MAX_BYTES = 200_000
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://aetherial.dev/miniapps/health")
# kind → (LOINC code, display, UCUM code, unit shown, category)
CODES: dict[str, tuple[str, str, str, str, str]] = {
    "heart_rate": ("8867-4", "Heart rate", "/min", "beats/minute", "vital-signs"),
    "weight": ("29463-7", "Body weight", "kg", "kg", "vital-signs"),
    "temperature": ("8310-5", "Body temperature", "Cel", "°C", "vital-signs"),
    "blood_pressure": (
        "85354-9",
        "Blood pressure panel with all children optional",
        "mm[Hg]",
        "mmHg",
        "vital-signs",
    ),
    "glucose": ("15074-8", "Glucose [Moles/volume] in Blood", "mmol/L", "mmol/L", "laboratory"),
}
GLUCOSE_MASS = ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", "mg/dL", "laboratory")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
APPOINTMENT_STATUSES = {
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
}


def urn(*parts: Any) -> tuple[str, str]:
    """``(id, fullUrl)`` of a resource named by ``parts`` (stable across exports)."""
    ident = str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))
    return ident, f"urn:uuid:{ident}"


def instant(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def quantity(value: float, code: str, shown: str) -> dict[str, Any]:
    return {"value": value, "unit": shown, "system": UCUM, "code": code}


def observation(vital: dict[str, Any], patient: str) -> dict[str, Any]:
    kind = vital["kind"]
    code, display, ucum, shown, category = CODES[kind]
    value = vital["value"]
    if kind == "glucose" and vital.get("basis") == "mass":
        code, display, ucum, shown, category = GLUCOSE_MASS
        value = units.glucose_mg_dl(value)
    ident, _ = urn("vital", vital["key"])
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "category": [coding(CATEGORY, category, category.replace("-", " ").title())],
        "code": coding(LOINC, code, display),
        "subject": {"reference": patient},
        "effectiveDateTime": instant(vital["at"]),
    }
    if kind == "blood_pressure":
        resource["component"] = [
            {
                "code": coding(LOINC, *SYSTOLIC),
                "valueQuantity": quantity(value["systolic"], ucum, shown),
            },
            {
                "code": coding(LOINC, *DIASTOLIC),
                "valueQuantity": quantity(value["diastolic"], ucum, shown),
            },
        ]
    else:
        resource["valueQuantity"] = quantity(value, ucum, shown)
    return resource


def medication_statement(
    med: dict[str, Any], patient: str, doses: list[dict[str, Any]]
) -> dict[str, Any]:
    ident, _ = urn("medication", med["id"])
    period = {"start": instant(med["created_at"])}
    if med.get("stopped_at"):
        period["end"] = instant(med["stopped_at"])
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": ident,
        "status": "active" if med.get("active") else "stopped",
        "medicationCodeableConcept": {"text": med["name"]},
        "subject": {"reference": patient},
        "effectivePeriod": period,
        "dateAsserted": instant(med["created_at"]),
        "dosage": [
            {
                "text": f"{med['dose']} at {', '.join(med['times'])} ({med['zone']})",
                "timing": {"repeat": {"timeOfDay": [f"{t}:00" for t in med["times"]]}},
            }
        ],
    }
    mine = adherence.rates([d for d in doses if d["med_id"] == med["id"]])
    if mine["adherence"] is not None:
        resource["note"] = [
            {
                "text": f"Last 30 days: {mine['adherence']}% of doses taken "
                f"({mine['taken']} taken, {mine['missed']} missed)."
            }
        ]
    return resource


def allergy_intolerance(allergy: dict[str, Any], patient: str) -> dict[str, Any]:
    ident, _ = urn("allergy", allergy["id"])
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": ident,
        "clinicalStatus": coding(CLINICAL, "active", "Active"),
        "verificationStatus": coding(VERIFICATION, "unconfirmed", "Unconfirmed"),
        "code": {"text": allergy["substance"]},
        "patient": {"reference": patient},
        "recordedDate": instant(allergy["created_at"]),
    }
    severity = allergy.get("severity")
    if severity:
        resource["criticality"] = "high" if severity == "severe" else "low"
    if allergy.get("reaction") or severity:
        reaction: dict[str, Any] = {
            "manifestation": [{"text": allergy.get("reaction") or "not specified"}]
        }
        if severity:
            reaction["severity"] = severity
        resource["reaction"] = [reaction]
    return resource


def related_dependent(dependent: dict[str, Any], patient: str) -> dict[str, Any]:
    ident, _ = urn("dependent", dependent["id"])
    code, display = circle.RELATIONSHIPS.get(
        dependent["relationship"], circle.RELATIONSHIPS["other"]
    )
    return {
        "resourceType": "RelatedPerson",
        "id": ident,
        "patient": {"reference": patient},
        "relationship": [coding(ROLE_CODE, code, display)],
        "name": [{"text": dependent["name"]}],
        "birthDate": dependent["birth_date"],
    }


def related_member(member: dict[str, Any], patient: str) -> dict[str, Any]:
    ident, _ = urn("circle", member["owner"], member["member"])
    return {
        "resourceType": "RelatedPerson",
        "id": ident,
        "patient": {"reference": patient},
        "relationship": [{"text": f"Care circle member (shares: {', '.join(member['scopes'])})"}],
        "name": [{"text": member.get("member_name") or "Member"}],
    }


def appointment(
    item: dict[str, Any], patient: str, patient_name: str, dependents: dict[str, tuple[str, str]]
) -> dict[str, Any] | None:
    """An ``Appointment`` from booking's document; None when it lacks what FHIR needs."""
    status = item.get("status")
    if status not in APPOINTMENT_STATUSES or not item.get("id"):
        return None
    ident, _ = urn("appointment", item["id"])
    who = item.get("patient") if isinstance(item.get("patient"), dict) else {}
    actor = {"reference": patient, "display": patient_name}
    if who.get("dependent") in dependents:
        url, name = dependents[who["dependent"]]
        actor = {"reference": url, "display": name}
    practitioner = item.get("practitioner_name") or item.get("practitioner") or "Practitioner"
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": ident,
        "status": status,
        "participant": [
            {"actor": actor, "status": "accepted"},
            {"actor": {"display": str(practitioner)[:200]}, "status": "accepted"},
        ],
    }
    for field in ("start", "end"):
        if isinstance(item.get(field), int):
            resource[field] = instant(item[field])
    if status == "cancelled" and item.get("cancel_reason"):
        resource["cancelationReason"] = {"text": str(item["cancel_reason"])[:200]}
    return resource


async def gather(ctx, owner: str) -> dict[str, Any]:
    """Everything of ``owner``'s the export holds."""
    appointments_of = records.sibling_function("booking", "appointments_of")
    appointments = list(await appointments_of(ctx, owner)) if appointments_of else []
    return {
        "name": await circle.display_name(ctx, ""),
        "vitals": await records.vitals_of(ctx, owner, limit=records.FIND_CAP),
        "medications": await records.medications_of(ctx, owner),
        "doses": await adherence.doses_of(ctx, owner, clock.now_ms() - 30 * 86_400_000),
        "allergies": await records.allergies_of(ctx, owner),
        "dependents": await circle.dependents_of(ctx, owner),
        "members": await circle.members_of(ctx, owner),
        "appointments": [a for a in appointments if isinstance(a, dict)],
    }


def bundle_of(owner: str, data: dict[str, Any], now: int, vitals_kept: int) -> dict[str, Any]:
    """The bundle as a dict (``vitals_kept``: the most recent observations kept)."""
    patient_id, patient = urn("patient", owner)
    resources: list[tuple[str, dict[str, Any]]] = []
    person: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": "urn:aetherial:health:user", "value": owner}],
    }
    if data["name"]:
        person["name"] = [{"text": data["name"]}]
    resources.append((patient, person))
    vitals = data["vitals"][-vitals_kept:] if vitals_kept else []
    for vital in vitals:
        resources.append((urn("vital", vital["key"])[1], observation(vital, patient)))
    for med in data["medications"]:
        resources.append(
            (urn("medication", med["id"])[1], medication_statement(med, patient, data["doses"]))
        )
    for allergy in data["allergies"]:
        resources.append((urn("allergy", allergy["id"])[1], allergy_intolerance(allergy, patient)))
    dependents: dict[str, tuple[str, str]] = {}
    for dependent in data["dependents"]:
        url = urn("dependent", dependent["id"])[1]
        dependents[dependent["id"]] = (url, dependent["name"])
        resources.append((url, related_dependent(dependent, patient)))
    for member in data["members"]:
        resources.append(
            (urn("circle", member["owner"], member["member"])[1], related_member(member, patient))
        )
    for item in data["appointments"]:
        resource = appointment(item, patient, data["name"] or "Patient", dependents)
        if resource is not None:
            resources.append((f"urn:uuid:{resource['id']}", resource))
    return {
        "resourceType": "Bundle",
        "id": urn("bundle", owner, now)[0],
        "type": "collection",
        "timestamp": instant(now),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in resources],
    }


def load_models() -> type:
    """``fhir.resources.R4B``'s Bundle (about a second to import the first time: the app warms
    it up in the background at start)."""
    from fhir.resources.R4B.bundle import Bundle

    return Bundle


def validated(bundle: dict[str, Any]) -> str:
    """The bundle as FHIR JSON once ``fhir.resources.R4B`` validated it (a ``ValueError`` —
    pydantic's — for one that is not valid FHIR R4)."""
    return load_models().model_validate(bundle).model_dump_json()


async def build_export(ctx, owner: str) -> tuple[str, dict[str, Any]]:
    """``(FHIR JSON, summary)`` of ``owner``'s records; the JSON is validated."""
    data = await gather(ctx, owner)
    now = clock.now_ms()
    kept = len(data["vitals"])
    while True:
        text = validated(bundle_of(owner, data, now, kept))
        if len(text.encode()) <= BUNDLE_MAX_BYTES or kept == 0:
            break
        kept //= 2
    counts: dict[str, int] = {}
    for entry in json.loads(text).get("entry", []):
        kind = entry["resource"]["resourceType"]
        counts[kind] = counts.get(kind, 0) + 1
    day = datetime.fromtimestamp(now / 1000, UTC).strftime("%Y%m%d")
    summary = {
        "filename": f"health-records-{day}.fhir.json",
        "resources": counts,
        "truncated": kept < len(data["vitals"]),
        "vitals_exported": kept,
        "at": now,
    }
    return text, summary


async def upload(ctx, owner: str, text: str, summary: dict[str, Any]) -> str:
    media_id = await ctx.upload_media(text.encode(), CONTENT_TYPE, summary["filename"], kind="file")
    await ctx.storage_put(EXPORTS, owner, {"owner": owner, "media_id": media_id, **summary})
    return media_id


async def export_command(ctx, args: list[str]) -> Reply:
    """``/health export``: the FHIR file, and a private card pointing at it."""
    if args:
        return records.private("Usage: /health export")
    text, summary = await build_export(ctx, ctx.user_id)
    try:
        await upload(ctx, ctx.user_id, text, summary)
    except HostError as exc:
        return records.private(f"The export could not be stored ({exc.code}): try again later.")
    counts = summary["resources"]
    card = Card(
        "Your health records (FHIR R4)",
        text=(
            "A FHIR R4 Bundle of your records, with LOINC codes for vitals. Only you see this; "
            "download it from the web view."
            + (" The oldest vitals were left out (size limit)." if summary["truncated"] else "")
        ),
        fields=[Field(kind, str(n)) for kind, n in sorted(counts.items())]
        + [Field("File", summary["filename"])],
        buttons=[Button.webview("Download", path="#export", style="primary")],
    )
    return records.private(card)


@records.view
async def view_export(ctx) -> dict:
    """``export.fhir``: the bundle (a JSON object) and a fresh address of the file."""
    text, summary = await build_export(ctx, ctx.user_id)
    media_url = None
    try:
        media_url = await ctx.media_url(await upload(ctx, ctx.user_id, text, summary))
    except HostError as exc:  # e.g. rate_limited: the page still has the bundle itself
        log.info("export file not stored: %s", exc.code)
    return {
        **summary,
        "content_type": CONTENT_TYPE,
        "media_url": media_url,
        "bundle": json.loads(text),
    }


SUBCOMMANDS = {"export": export_command}
VIEWS = {"export.fhir": view_export}
