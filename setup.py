"""Build and install clp.

The cffi modules ``clp._diskhb_native`` (the disk heartbeat's I/O, ``native/diskhb.c``) and
``clp._hbrx_native`` (the heartbeat receive path, ``native/hbrx.c``) are
built by ``native/build_native.py``; ``pip install -e .`` compiles them in place next to ``clp/``.
"""

from setuptools import find_packages, setup

CFFI_MODULES: list[str] = ["native/build_native.py:diskhb", "native/build_native.py:hbrx"]

SERVICES = {
    "clusterpro": "services.clusterpro:main",
    "clusterpro_evt": "services.clusterpro_evt:main",
    "clusterpro_trn": "services.clusterpro_trn:main",
    "clusterpro_alertsync": "services.clusterpro_alertsync:main",
    "clpsupervise": "services.clpsupervise:main",
    "clpwitnessd": "services.clpwitnessd:main",
}
COMMANDS = {
    "clpcl": "clp.cli.clpcl:main",
    "clpstat": "clp.cli.clpstat:main",
    "clpgrp": "clp.cli.clpgrp:main",
    "clprsc": "clp.cli.clprsc:main",
    "clpdown": "clp.cli.clpdown:main",
    "clpstdn": "clp.cli.clpstdn:main",
    "clplogcmd": "clp.cli.clplogcmd:main",
    "clpcfchk": "clp.cli.clpcfchk:main",
    "clptoratio": "clp.cli.clptoratio:main",
    "clpshm": "clp.cli.clpshm:main",
    "clpmonctrl": "clp.cli.clpmonctrl:main",
    "clpregctrl": "clp.cli.clpregctrl:main",
    "clprexec": "clp.cli.clprexec:main",
    "clplogcc": "clp.cli.clplogcc:main",
    "clpcfctrl": "clp.cli.clpcfctrl:main",
    "clplab": "clp.lab.cli:main",
    "clpsnmpagent": "clp.snmp.passpersist:main",  # snmpd runs it: pass_persist
}

setup(
    name="clp",
    version="0.1.0",
    description="High-availability cluster manager compatible with CLUSTERPRO X 4.1",
    python_requires=">=3.11",
    packages=find_packages(include=["clp", "clp.*", "services"]),
    package_data={"clp": ["samples/**/*", "samples/*/*", "samples/*/scripts/**/*"]},
    install_requires=[
        "posix-ipc>=1.1",
        "cffi>=1.15",
        "pyserial>=3.5",
        "psutil>=5.9",
        "pyyaml>=6.0",
        "click>=8.2",  # CliRunner keeps stdout and stderr apart (the commands use both)
        "jsonschema>=4.17",
    ],
    extras_require={"test": ["pytest>=7", "pytest-timeout>=2", "hypothesis>=6", "ruff>=0.5",
                             "aiosmtpd>=1.4"],
                    "bench": ["py-spy>=0.3"]},
    setup_requires=["cffi>=1.15"] if CFFI_MODULES else [],
    cffi_modules=CFFI_MODULES,
    entry_points={
        "console_scripts": [f"{name}={target}" for name, target in {**SERVICES, **COMMANDS}.items()]
    },
)
