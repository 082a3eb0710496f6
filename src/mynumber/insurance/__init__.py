"""オンライン資格確認: the My Number Card as a health-insurance card (issue 15).

Insurers and their insured persons, links to residents made only on all four basic items
(住基ネット), the card's 初回登録, eligibility checks at medical institutions' terminals, consent
per visit for 薬剤情報・特定健診情報・診療・手術情報, 資格確認書 and 資格情報のお知らせ, and the
FHIR R4 form of the answer. See docs/insurance.md.
"""
