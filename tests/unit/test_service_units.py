"""The service definitions: ``systemd/*.service`` and ``smf/*.xml`` start the five services in
exactly the seed's order (``clp.platform.services.SERVICES``) and stop them in its reverse
(``STOP_ORDER``), never tie one clp service's life to another's, and are valid for their manager
(``systemd-analyze verify``; ``xmllint`` with our SMF DTD, ``smf/clp-service-bundle.dtd``, and
with the system's where there is one).

The order is computed from the files (a topological sort that refuses a cycle and refuses two
services left unordered, which a manager may start either way), and the checker itself is tested
on altered copies, so a unit or manifest that drifts from the table fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from clp.paths import DEFAULT_ROOT
from clp.platform.services import SERVICES, STOP_ORDER

REPO = Path(__file__).resolve().parents[2]
SYSTEMD, SMF = REPO / "systemd", REPO / "smf"
DTD_SYSTEM_ID = "/usr/share/lib/xml/dtd/service_bundle.dtd.1"  # where Solaris/illumos keep it
CLP_DTD = SMF / "clp-service-bundle.dtd"  # our own description of the subset the manifests use
FMRI = "svc:/application/clusterpro/{}:default"
TIE = ("Requires", "BindsTo", "PartOf", "Requisite", "Upholds")  # Wants= only, between ours


class OrderError(Exception):
    pass


def start_order(after: dict[str, set[str]]) -> tuple[str, ...]:
    """The one order in which every service comes after those in ``after[service]``."""
    left = {s: set(a) & after.keys() for s, a in after.items()}
    order: list[str] = []
    while left:
        ready = sorted(s for s, a in left.items() if not a)
        if not ready:
            raise OrderError(f"dependency cycle among {', '.join(sorted(left))}")
        if len(ready) > 1:
            raise OrderError(f"{' and '.join(ready)} are not ordered: either may start first")
        order.append(ready[0])
        del left[ready[0]]
        for a in left.values():
            a.discard(ready[0])
    return tuple(order)


def stop_order(after: dict[str, set[str]]) -> tuple[str, ...]:
    """Both managers stop a service only once those ordered after it have stopped."""
    before = {s: {t for t, a in after.items() if s in a} for s in after}
    return start_order(before)


# --- systemd -----------------------------------------------------------------------------------

def read_unit(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value assigned to it, in order (a key may be repeated)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def unit_texts() -> dict[str, str]:
    return {name: (SYSTEMD / f"{name}.service").read_text() for name in SERVICES}


def systemd_after(texts: dict[str, str]) -> dict[str, set[str]]:
    after = {}
    for name, text in texts.items():
        words = " ".join(read_unit(text).get("Unit.After", [])).split()
        after[name] = {w.removesuffix(".service") for w in words}
    return after


def test_systemd_units_start_in_the_seeds_order_and_stop_in_reverse() -> None:
    after = systemd_after(unit_texts())
    assert start_order(after) == SERVICES
    assert stop_order(after) == STOP_ORDER


def test_systemd_units_never_tie_one_clp_service_to_another() -> None:
    ours = {f"{n}.service" for n in SERVICES}
    for name, text in unit_texts().items():
        unit = read_unit(text)
        assert unit["Service.Type"] == ["notify"], name
        assert unit["Service.NotifyAccess"] == ["main"], name
        assert unit["Service.Restart"] == ["on-failure"], name
        assert unit["Service.Environment"] == [f"CLP_ROOT={DEFAULT_ROOT}"], name
        assert unit["Service.ExecStart"] == [f"{DEFAULT_ROOT}/bin/{name}"], name
        for tie in TIE:
            tied = set(" ".join(unit.get(f"Unit.{tie}", [])).split()) & ours
            assert not tied, f"{name}: {tie}={' '.join(sorted(tied))}: use Wants="
        # only clusterpro leaves the applications of its exec resources running on a restart
        assert (unit.get("Service.KillMode") == ["process"]) == (name == "clusterpro"), name


def verify_units(texts: dict[str, str], tmp_path: Path) -> str:
    """``systemd-analyze verify`` on copies whose ExecStart is an executable here; what it said
    (it exits 0 on a directive it ignores, so its output counts too)."""
    program = tmp_path / "daemon"
    program.write_text("#!/bin/sh\nexec sleep 1\n")
    program.chmod(0o755)
    paths = []
    for name, text in texts.items():
        path = tmp_path / f"{name}.service"
        path.write_text(re.sub(r"(?m)^ExecStart=.*$", f"ExecStart={program}", text))
        paths.append(str(path))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *paths], capture_output=True,
                       text=True, timeout=60)
    return (r.stdout + r.stderr).strip() or ("" if r.returncode == 0 else f"exit {r.returncode}")


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    assert verify_units(unit_texts(), tmp_path) == ""


def test_systemd_analyze_check_catches_a_bad_unit(tmp_path: Path) -> None:
    texts = unit_texts()
    texts["clusterpro"] = texts["clusterpro"].replace("KillMode=process", "KillMode=proces")
    assert "kill mode" in verify_units(texts, tmp_path)


# --- SMF ---------------------------------------------------------------------------------------

def manifest_texts() -> dict[str, str]:
    return {name: (SMF / f"{name}.xml").read_text() for name in SERVICES}


def service_of(text: str) -> ET.Element:
    service = ET.fromstring(text).find("service")
    assert service is not None
    return service


def smf_after(texts: dict[str, str]) -> dict[str, set[str]]:
    fmris = {FMRI.format(n): n for n in SERVICES}
    after = {}
    for name, text in texts.items():
        values = {f.get("value") for f in service_of(text).iter("service_fmri")}
        after[name] = {fmris[v] for v in values if v in fmris}
    return after


def test_smf_manifests_start_in_the_seeds_order_and_stop_in_reverse() -> None:
    after = smf_after(manifest_texts())
    assert start_order(after) == SERVICES
    assert stop_order(after) == STOP_ORDER


def test_smf_order_between_clp_services_never_restarts_one_with_another() -> None:
    ours = {FMRI.format(n) for n in SERVICES}
    for name, text in manifest_texts().items():
        deps = service_of(text).findall("dependency")
        assert deps, name
        for dep in deps:
            fmris = {f.get("value") for f in dep.iter("service_fmri")}
            assert dep.get("restart_on") == "none", (name, dep.get("name"))
            assert dep.get("type") == "service", (name, dep.get("name"))
            # ordering only between ours; what a service really needs is required
            want = "optional_all" if fmris <= ours else "require_all"
            assert not (fmris & ours) or fmris <= ours, (name, dep.get("name"))
            assert dep.get("grouping") == want, (name, dep.get("name"))


def propvals(element: ET.Element, group: str) -> dict[str, str]:
    pg = element.find(f"property_group[@name='{group}']")
    assert pg is not None, group
    return {p.get("name", ""): p.get("value", "") for p in pg.findall("propval")}


def test_smf_manifests_run_the_foreground_daemon_from_the_install_root() -> None:
    for name, text in manifest_texts().items():
        assert f'<!DOCTYPE service_bundle SYSTEM "{DTD_SYSTEM_ID}">' in text, name
        service = service_of(text)
        assert service.get("name") == f"application/clusterpro/{name}"
        methods = {m.get("name"): m for m in service.findall("exec_method")}
        assert methods["start"].get("exec") == f"%{{clp/root}}/bin/{name}", name
        env = {e.get("name"): e.get("value") for e in service.iter("envvar")}
        assert env == {"CLP_ROOT": DEFAULT_ROOT} == {"CLP_ROOT": propvals(service, "clp")["root"]}
        startd = propvals(service, "startd")
        assert startd["duration"] == "child", name
        unit = read_unit((SYSTEMD / f"{name}.service").read_text())  # the same limits as systemd
        assert startd["critical_failure_count"] == unit["Unit.StartLimitBurst"][0], name
        assert startd["critical_failure_period"] == unit["Unit.StartLimitIntervalSec"][0], name
        assert methods["stop"].get("timeout_seconds") == unit["Service.TimeoutStopSec"][0], name
        assert ("ignore_error" in startd) == (name == "clusterpro"), name


def test_svcadm_abbreviations_in_the_seed_name_one_service_each() -> None:
    """svcadm matches an abbreviated FMRI against the last components of the service name."""
    names = [service_of(t).get("name", "") for t in manifest_texts().values()]
    for short in SERVICES:
        assert [n for n in names if n == short or n.endswith("/" + short)] == \
            [f"application/clusterpro/{short}"]


def test_order_checker_catches_a_service_out_of_place() -> None:
    smf = manifest_texts()
    trn_dep = re.compile(r'\s*<dependency name="clusterpro_trn".*?</dependency>', re.S)
    smf["clusterpro"] = trn_dep.sub("", smf["clusterpro"])  # clusterpro no longer after trn
    with pytest.raises(OrderError, match="clusterpro and clusterpro_trn are not ordered"):
        start_order(smf_after(smf))

    units = unit_texts()  # trn after clusterpro instead of before it: a valid, wrong order
    units["clusterpro"] = units["clusterpro"].replace(" clusterpro_trn.service", "")
    units["clusterpro_trn"] = units["clusterpro_trn"].replace(
        "After=network-online.target clusterpro_evt.service",
        "After=network-online.target clusterpro_evt.service clusterpro.service")
    units["clusterpro_webmgr"] = units["clusterpro_webmgr"].replace(
        "After=clusterpro.service", "After=clusterpro.service clusterpro_trn.service")
    assert start_order(systemd_after(units)) == (
        "clusterpro_evt", "clusterpro", "clusterpro_trn", "clusterpro_webmgr",
        "clusterpro_alertsync")

    units["clusterpro_evt"] += "\n[Unit]\nAfter=clusterpro_alertsync.service\n"
    with pytest.raises(OrderError, match="cycle"):
        start_order(systemd_after(units))


def system_dtd() -> Path | None:
    """The Solaris/illumos service_bundle DTD, the authority (``svccfg validate`` reads it), when
    this machine has it or $CLP_SMF_DTD names a copy; it is not in this repository
    (smf/README.md)."""
    candidates = [os.environ.get("CLP_SMF_DTD", ""), DTD_SYSTEM_ID]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def xmllint(paths: list[Path], dtd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Validate against ``dtd``; the manifests' own DOCTYPE resolves to it through a catalog, as
    on Solaris, instead of a load warning."""
    assert shutil.which("xmllint"), "no xmllint: install libxml2-utils (tools/install-deps.sh)"
    catalog = tmp_path / "catalog.xml"
    catalog.write_text(
        '<?xml version="1.0"?>\n'
        '<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">\n'
        f'  <system systemId="{DTD_SYSTEM_ID}" uri="{dtd.resolve().as_uri()}"/>\n'
        '</catalog>\n')
    env = {**os.environ, "XML_CATALOG_FILES": str(catalog)}
    return subprocess.run(["xmllint", "--noout", "--nonet", "--dtdvalid", str(dtd),
                           *map(str, paths)], capture_output=True, text=True, env=env,
                          timeout=60)


@pytest.fixture(params=["clp", "system"])
def dtd(request: pytest.FixtureRequest) -> Path:
    """Ours always (smf/clp-service-bundle.dtd); the system's as well where there is one."""
    if request.param == "clp":
        return CLP_DTD
    found = system_dtd()
    if found is None:
        pytest.skip(f"no system SMF DTD ({DTD_SYSTEM_ID}, $CLP_SMF_DTD): checked against ours")
    return found


def test_smf_manifests_are_valid_for_the_dtd(dtd: Path, tmp_path: Path) -> None:
    r = xmllint([SMF / f"{name}.xml" for name in SERVICES], dtd, tmp_path)
    assert (r.returncode, r.stderr) == (0, "")


def test_dtd_check_catches_an_invalid_manifest(dtd: Path, tmp_path: Path) -> None:
    bad = tmp_path / "clusterpro_evt.xml"
    bad.write_text(manifest_texts()["clusterpro_evt"].replace(' timeout_seconds="30"', ""))
    r = xmllint([bad], dtd, tmp_path)
    assert r.returncode != 0 and "timeout_seconds" in r.stderr


@pytest.mark.parametrize(("old", "new", "said"), [
    ('grouping="optional_all"', 'grouping="optional_any"',
     '"optional_any" for attribute grouping of dependency is not among the enumerated set'),
    ('grouping="require_all" restart_on="none"', 'grouping="require_all" restart_on="never"',
     '"never" for attribute restart_on of dependency is not among the enumerated set'),
    ('type="integer"', 'type="int"', '"int" for attribute type of propval is not among'),
    ("<single_instance/>", "<single_instance/>\n    <singleton/>",
     "No declaration for element singleton"),
    ('<stability value="Unstable"/>', '<stability value="Unstable"/><exec_method type="method"'
     ' name="refresh" exec=":true" timeout_seconds="30"/>',  # a method after the stability
     "Element service content does not follow the DTD"),
], ids=["grouping", "restart_on", "propval-type", "unknown-element", "element-order"])
def test_dtd_constrains_values_and_elements(dtd: Path, tmp_path: Path, old: str, new: str,
                                            said: str) -> None:
    text = manifest_texts()["clusterpro"]
    assert old in text
    bad = tmp_path / "clusterpro.xml"
    bad.write_text(text.replace(old, new, 1))
    r = xmllint([bad], dtd, tmp_path)
    assert r.returncode != 0 and said in r.stderr, r.stderr


# Every element smf/clp-service-bundle.dtd declares, in the places the format allows them: valid
# for ours, and for the system's where it is found, so ours is not stricter than SMF where a
# manifest may one day need it.
_LIST_VALUES = {"astring": "a", "ustring": "u", "boolean": "false", "count": "1", "integer": "-1",
                "time": "1.5", "opaque": "00ff", "fmri": "svc:/a", "uri": "http://localhost/",
                "host": "localhost", "hostname": "localhost", "net_address_v6": "::1"}
LISTS = "\n".join(f'      <property name="{t}s" type="{t}"><{t}_list><value_node value="{v}"/>'
                  f"</{t}_list></property>" for t, v in _LIST_VALUES.items())
EVERY_ELEMENT = f"""<?xml version="1.0"?>
<!DOCTYPE service_bundle SYSTEM "{DTD_SYSTEM_ID}">
<service_bundle type="manifest" name="sample">
  <service name="application/clp/sample" type="service" version="1">
    <create_default_instance enabled="false"/>
    <restarter><service_fmri value="svc:/system/svc/restarter:default"/></restarter>
    <dependency name="config" grouping="require_any" restart_on="refresh" type="path">
      <service_fmri value="file://localhost/etc/clp.conf"/>
      <stability value="Evolving"/>
    </dependency>
    <dependent name="sample_user" grouping="optional_all" restart_on="restart">
      <service_fmri value="svc:/milestone/multi-user"/>
    </dependent>
    <method_context working_directory="/var/tmp">
      <method_credential user="root" group="root" privileges="basic"/>
      <method_environment><envvar name="LANG" value="C"/></method_environment>
    </method_context>
    <exec_method type="method" name="start" exec="/bin/true" timeout_seconds="60">
      <method_context><method_profile name="Service Management"/></method_context>
    </exec_method>
    <property_group name="sample" type="application">
      <stability value="Unstable"/>
      <propval name="on" type="boolean" value="true"/>
      <property name="addresses" type="net_address_v4">
        <net_address_v4_list><value_node value="192.0.2.1"/></net_address_v4_list>
      </property>
{LISTS}
    </property_group>
    <instance name="secondary" enabled="false">
      <exec_method type="method" name="stop" exec=":kill" timeout_seconds="30"/>
      <template><common_name><loctext xml:lang="C">sample secondary</loctext></common_name>
      </template>
    </instance>
    <stability value="Stable"/>
    <template>
      <common_name><loctext xml:lang="C">sample</loctext></common_name>
      <description><loctext xml:lang="C">every element of the clp DTD</loctext></description>
      <documentation>
        <manpage title="svc.startd" section="8"/>
        <doc_link name="clp" uri="http://localhost/clp"/>
      </documentation>
    </template>
  </service>
</service_bundle>
"""


def test_dtd_accepts_every_element_clps_declares(dtd: Path, tmp_path: Path) -> None:
    declared = set(re.findall(r"<!ELEMENT\s+(\w+)", CLP_DTD.read_text()))
    used = {e.tag for e in ET.fromstring(EVERY_ELEMENT).iter()}
    assert used == declared - {"single_instance"}  # in every manifest; not with two instances
    sample = tmp_path / "sample.xml"
    sample.write_text(EVERY_ELEMENT)
    r = xmllint([sample], dtd, tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
