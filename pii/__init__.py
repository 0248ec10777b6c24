"""Personal data protection (PIPL): who sees ID numbers and phones in full (rules), the
audited reveal of one value (reveal) and its route on the case pages (views)."""
