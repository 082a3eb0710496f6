"""公的個人認証サービス (JPKI): the My Number Card's certificates, with J-LIS as the CA.

CA private keys live behind :mod:`mynumber.keys` (a software provider for the
embedded mode, a PKCS#11 token in production).
"""
