"""The Open311 service catalogue: what citizens can report, with the extra questions
(attributes) each service asks. A service is offered when a playbook handles it."""

from __future__ import annotations

from dataclasses import dataclass, field

from pingan.vocabulary import CATEGORIES


@dataclass(frozen=True)
class AttributeValue:
    key: str
    name: str


@dataclass(frozen=True)
class Attribute:
    code: str
    description: str
    datatype: str  # string, number, datetime, text, singlevaluelist, multivaluelist
    required: bool = False
    order: int = 1
    values: tuple[AttributeValue, ...] = ()


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    description: str
    group: str
    keywords: str
    attributes: tuple[Attribute, ...] = field(default=())


BLOCKING = Attribute(
    "blocking",
    "挡住了什么 What is blocked?",
    "singlevaluelist",
    required=False,
    order=1,
    values=(
        AttributeValue("road", "车行道 Road"),
        AttributeValue("sidewalk", "人行道 Sidewalk"),
        AttributeValue("none", "未阻挡 Nothing"),
    ),
)


def _name(code: str) -> str:
    zh, en = CATEGORIES[code]
    return f"{zh} {en}"


CATALOGUE: dict[str, Service] = {
    s.code: s
    for s in (
        Service(
            "fallen_tree",
            _name("fallen_tree"),
            "树木倒伏、断枝挂落 Fallen trees and broken branches",
            "园林绿化 Parks",
            "树,倒伏,断枝,tree,branch",
            (BLOCKING,),
        ),
        Service(
            "waterlogging",
            _name("waterlogging"),
            "道路、下穿通道积水 Flooded streets and underpasses",
            "排水 Drainage",
            "积水,内涝,flood",
            (
                Attribute(
                    "depth",
                    "积水深度 Water depth",
                    "singlevaluelist",
                    order=1,
                    values=(
                        AttributeValue("ankle", "脚踝 Ankle"),
                        AttributeValue("knee", "膝盖 Knee"),
                        AttributeValue("deeper", "更深 Deeper"),
                    ),
                ),
            ),
        ),
        Service(
            "snow_ice",
            _name("snow_ice"),
            "积雪未清、路面桥面结冰 Uncleared snow, icy roads and bridges",
            "环卫 Sanitation",
            "雪,结冰,ice,snow",
        ),
        Service(
            "manhole",
            _name("manhole"),
            "井盖缺失、破损、松动 Missing, broken or loose manhole covers",
            "市政设施 Municipal facilities",
            "井盖,窨井,manhole",
            (BLOCKING,),
        ),
        Service(
            "streetlight",
            _name("streetlight"),
            "路灯不亮、闪烁、灯杆损坏 Lights out, flickering, damaged poles",
            "路灯 Lighting",
            "路灯,照明,streetlight",
            (Attribute("pole_number", "灯杆编号 Pole number (if visible)", "string", order=1),),
        ),
    )
}


class AttributeInvalid(ValueError):
    pass


def check_attributes(service: Service, given: dict[str, str]) -> dict[str, str]:
    """attribute[code] values against the service definition."""
    known = {a.code: a for a in service.attributes}
    for code in given:
        if code not in known:
            raise AttributeInvalid(f"attribute[{code}]: not an attribute of {service.code}")
    for attr in service.attributes:
        value = given.get(attr.code, "").strip()
        if attr.required and not value:
            raise AttributeInvalid(f"attribute[{attr.code}]: required")
        allowed = {v.key for v in attr.values}
        if value and allowed and value not in allowed:
            raise AttributeInvalid(
                f"attribute[{attr.code}]: {value!r} is not one of {', '.join(sorted(allowed))}"
            )
    return {k: v.strip() for k, v in given.items() if v.strip()}
