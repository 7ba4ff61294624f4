-- Schema version 5: who attends to an incident. `attention` holds, as JSON, the owner (who
-- acknowledged it and since when) and the silence (by whom, until when, why, and the severity
-- it was silenced at). NULL: nobody owns it and it is not silenced. Written only by
-- `storage.attention` (with a compare-and-set on the incident's version, its audit row and its
-- event in one transaction); read with the incident.
ALTER TABLE incidents ADD COLUMN attention TEXT;
