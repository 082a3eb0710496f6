"""The web kernel every context's HTTP layer uses: CSRF bound to the session, security
headers, request body limits, error rendering (HTML page or RFC 9457 problem), the HTML route
class with sign-in redirects, the staff counter's shell and shared form helpers.

Contexts import the kernel, never ``mynumber.web`` (which only assembles the app). The kernel
renders with ``mynumber.web.templating`` and reads ``mynumber.web.i18n``, the two leaf modules
views may use anyway; it imports no context except through ``interfaces``.
"""
