// OpenLDAP's client library (libldap-dev), for the LDAP adapter of the Connectors module.
#include <lber.h>
#include <ldap.h>
