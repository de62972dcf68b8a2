"""SNMP: the product's MIB (``mib/``) served to net-snmp's snmpd, and the alert traps."""
