"""Output contracts as users have them: pydantic v2 models of typical structured-output
tasks, and structured-output API schemas, each with valid example outputs.

Each entry: a name, the JSON Schema (``model_json_schema()`` as pydantic writes it, or
the API's own form) and valid outputs to mutate in the agreement tests.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class Sentiment(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    confidence: float = Field(ge=0, le=1)


class Colour(str, enum.Enum):
    RED = "red"
    NAVY = "navy blue"
    OLIVE = "olive/green"


class Product(BaseModel):
    colour: Colour
    tags: list[str] = Field(default_factory=list, max_length=3)


class Profile(BaseModel):
    name: str
    nickname: Optional[str] = None
    age: Optional[int] = Field(None, ge=0, le=150)


class Address(BaseModel):
    street: str
    city: str
    zip: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    name: str
    address: Address
    previous: Optional[Address] = None


class LineItem(BaseModel):
    sku: str
    qty: int = Field(ge=1)
    price: float = Field(gt=0)


class Invoice(BaseModel):
    items: list[LineItem] = Field(min_length=1)
    currency: Literal["EUR", "USD"] = "EUR"


class Priority(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class Task(BaseModel):
    title: str = Field(max_length=40)
    priority: Priority
    done: bool = False


class Event(BaseModel):
    name: str
    day: datetime.date
    start: datetime.datetime
    id: uuid.UUID


class Contact(BaseModel):
    email: str = Field(json_schema_extra={"format": "email"})
    phone: str = Field(pattern=r"^\+?[0-9 ]{6,15}$")


class Scores(BaseModel):
    scores: dict[str, int]


class Cat(BaseModel):
    pet_type: Literal["cat"]
    meows: int


class Dog(BaseModel):
    pet_type: Literal["dog"]
    barks: float


class Owner(BaseModel):
    pet: Annotated[Union[Cat, Dog], Field(discriminator="pet_type")]


class Measurement(BaseModel):
    value: Union[int, str]


class TreeNode(BaseModel):
    value: int
    children: list["TreeNode"] = Field(default_factory=list)


class Pair(BaseModel):
    pair: tuple[int, str]


class Labels(BaseModel):
    labels: set[Literal["urgent", "billing", "bug"]]


class Code(BaseModel):
    code: str = Field(min_length=2, max_length=4, pattern=r"^[A-Z]+$")


class Quantity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int = Field(multiple_of=5)
    ratio: float = Field(gt=0, lt=1)


class Survey(BaseModel):
    answers: list[Optional[int]]
    comment: Optional[Address] = None


def _pydantic(model) -> dict:
    return model.model_json_schema()


# An OpenAI-style strict function-calling schema, written as the API takes it.
WEATHER_CALL = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and country"},
        "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", None]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
    },
    "required": ["location", "unit", "days"],
    "additionalProperties": False,
}

# A configuration file's schema with a condition and an exclusion (SchemaStore style).
CONDITIONAL_CONFIG = {
    "type": "object",
    "properties": {"kind": {"enum": ["a", "b"]}, "size": {"type": "integer"}, "tag": {"type": "string"}},
    "required": ["kind"],
    "if": {"properties": {"kind": {"const": "a"}}}, "then": {"required": ["size"]},
    "not": {"required": ["tag", "size"]},
    "additionalProperties": False,
}

CASES: list[tuple[str, dict, list]] = [
    ("sentiment", _pydantic(Sentiment), [{"label": "positive", "confidence": 0.93}, {"label": "neutral", "confidence": 0}]),
    ("enum product", _pydantic(Product), [{"colour": "navy blue", "tags": ["a", "b"]}, {"colour": "olive/green"}]),
    ("optional fields", _pydantic(Profile), [{"name": "Ann", "nickname": None, "age": 31}, {"name": "Bo"}]),
    ("nested model", _pydantic(Person), [{"name": "C", "address": {"street": "Main 1", "city": "Oslo", "zip": "01234"}},
                                         {"name": "D", "address": {"street": "s", "city": "c", "zip": "99999"},
                                          "previous": None}]),
    ("list of objects", _pydantic(Invoice), [{"items": [{"sku": "A-1", "qty": 2, "price": 9.5}], "currency": "USD"},
                                             {"items": [{"sku": "B", "qty": 1, "price": 0.01},
                                                        {"sku": "C", "qty": 3, "price": 12}]}]),
    ("int enum", _pydantic(Task), [{"title": "Fix login", "priority": 3, "done": True}, {"title": "", "priority": 1}]),
    ("dates and ids", _pydantic(Event), [{"name": "launch", "day": "2024-02-29", "start": "2024-02-29T09:30:00Z",
                                          "id": "123e4567-e89b-12d3-a456-426614174000"}]),
    ("email and phone", _pydantic(Contact), [{"email": "a@example.com", "phone": "+47 123 456"}]),
    ("dict argument", _pydantic(Scores), [{"scores": {"alice": 3, "bob": -1}}, {"scores": {}}]),
    ("discriminated union", _pydantic(Owner), [{"pet": {"pet_type": "cat", "meows": 4}},
                                               {"pet": {"pet_type": "dog", "barks": 2.5}}]),
    ("plain union", _pydantic(Measurement), [{"value": 12}, {"value": "twelve"}]),
    ("recursive model", _pydantic(TreeNode), [{"value": 1, "children": [{"value": 2, "children": []}, {"value": 3}]}]),
    ("tuple", _pydantic(Pair), [{"pair": [1, "one"]}]),
    ("set of literals", _pydantic(Labels), [{"labels": ["bug", "urgent"]}, {"labels": []}]),
    ("constrained string", _pydantic(Code), [{"code": "AB"}, {"code": "WXYZ"}]),
    ("multiple of and exclusive bounds", _pydantic(Quantity), [{"quantity": 15, "ratio": 0.25}]),
    ("optional items and models", _pydantic(Survey), [{"answers": [1, None, 3], "comment": None}, {"answers": []}]),
    ("conditional config", CONDITIONAL_CONFIG, [{"kind": "a", "size": 3}, {"kind": "b", "tag": "x"}]),
    ("strict function call", WEATHER_CALL, [{"location": "Paris, FR", "unit": None, "days": 3},
                                            {"location": "Lima", "unit": "celsius", "days": 14}]),
]
