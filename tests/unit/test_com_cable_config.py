"""The lab's COM cable: the generated clp.conf names the links clp.lab.com_cable makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from clp.config import load_config
from clp.config.lab import generate_lab_config
from clp.lab import com_cable


@pytest.mark.parametrize("n", [2, 3])
def test_generated_config_with_com_is_clean_and_names_the_cable_links(tmp_path: Path,
                                                                     n: int) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "clp.conf").write_text(generate_lab_config(n, 0.1, 0.5, com=True))
    cfg = load_config(tmp_path)
    assert cfg.warnings == ()
    com = [ic for ic in cfg.interconnects if ic.type == "com"]
    assert [ic.name for ic in com] == ["comhb1"]
    assert com[0].servers == ("server1", "server2")
    assert dict(com[0].devices) == {s: "/dev/lab/comhb1" for s in ("server1", "server2")}
    assert com_cable.device("t1", "server2") == "/run/clplab/t1/comhb1/server2"


def test_no_com_by_default() -> None:
    assert "type: com" not in generate_lab_config(2, 1, 10)


def test_a_given_config_says_what_the_lab_must_provide() -> None:
    from clp.config.lab import lab_needs
    from clp.lab.samples import LAB2

    assert lab_needs((LAB2 / "clp.conf").read_text()) == {"diskhb": True, "com": True,
                                                          "router": True}
    assert lab_needs(generate_lab_config(3, 1, 10)) == {"diskhb": False, "com": False,
                                                        "router": False}
    witness = generate_lab_config(2, 1, 10, witness=True)
    assert lab_needs(witness)["router"] and not lab_needs(witness)["diskhb"]
    assert lab_needs("::: not yaml") == {"diskhb": False, "com": False, "router": False}
