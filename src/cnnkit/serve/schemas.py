"""Request and response bodies (Pydantic), so ``/docs`` documents every endpoint."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PersonIn(BaseModel):
    name: str = Field(..., description="1-200 printable characters without commas")


class PersonOut(BaseModel):
    id: int
    name: str
    photos: int = Field(..., description="number of enrolled photos (descriptors)")
    created_at: str


class PersonPage(BaseModel):
    items: list[PersonOut]
    total: int
    offset: int
    limit: int
    next_offset: int | None = Field(None, description="offset of the next page, null at the end")


class PhotoOut(BaseModel):
    id: int
    person_id: int
    sha256: str | None
    source: str | None
    created_at: str


class PhotoAdded(BaseModel):
    person: PersonOut
    faces: int = Field(..., description="faces found in the photo")
    box: dict[str, int] | None
    sha256: str
    also_enrolled_as: list[str] = Field(
        default_factory=list, description="other persons who already have this same file"
    )
    min_distance: float | None = Field(
        None, description="distance to the person's earlier photos (null for the first)"
    )
    far: bool = Field(False, description="farther than tau from every earlier photo")
    tau: float


class Info(BaseModel):
    gallery: str
    encoder: str | None = Field(None, description="model_id of the encoder in use")
    gallery_encoder: str | None = Field(None, description="model_id the gallery was made with")
    gallery_pipeline: str | None = Field(
        None,
        description="how the gallery's descriptors are made (cnnkit.face.descriptors; fixed at "
        "its first photo; null: none yet, the default will be used)",
    )
    detector: str = Field(..., description="the face detector that runs: hog, cnn, or auto's rule")
    precision: str | None = Field(
        None, description="the encoder arithmetic that runs: fp32, bf16 or int8 (auto resolved)"
    )
    precision_requested: str = Field(..., description="--precision: auto, fp32, bf16 or int8")
    tau: float = Field(..., description="the pair tau verify and enroll use")
    tau_calibrated: bool
    tau_identification: float | None = Field(
        None, description="the 1:N tau identify uses (None: not calibrated, identify uses tau)"
    )
    tau_identification_fpir: float | None = None
    tau_identification_gallery_size: int | None = Field(
        None, description="persons in the gallery the identification tau was calibrated on"
    )
    tau_identification_score: str | None = Field(
        None, description="what the identification tau applies to: none (distance), tnorm or snorm"
    )
    identify_tau: float = Field(..., description="the tau identify applies now")
    identify_tau_source: str = Field(..., description="identification, pair or default")
    warning: str | None = Field(
        None, description="set when the gallery has outgrown its identification tau"
    )
    persons: int
    descriptors: int
    storage: str
    version: str


class KeyIn(BaseModel):
    role: str = Field(..., description="admin, enroll or query")
    label: str | None = None


class KeyOut(BaseModel):
    id: int
    role: str
    gallery: str
    label: str | None
    created_at: str
    revoked_at: str | None


class KeyCreated(KeyOut):
    key: str = Field(..., description="the secret, shown this once")


class AuditOut(BaseModel):
    id: int
    at: str
    key_id: int | None
    action: str
    person_id: int | None
    detail: str | None
