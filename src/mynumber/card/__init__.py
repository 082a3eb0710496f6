"""個人番号カード (My Number Card): applications, issuance and the virtual IC chip."""
