WITH q_0_base AS (
  SELECT
    "lead".lead_id AS "_canon_id",
    "lead".lead_id AS "_canon_entity",
    "lead".created_at AS "_canon_time",
    "campaign".channel AS "campaign__channel"
  FROM leads AS "lead"
  LEFT JOIN campaigns AS "campaign"
    ON "lead".campaign_id = "campaign".campaign_id
), q_0_events AS (
  SELECT
    "lead_meeting".lead_id AS "_canon_entity",
    "lead_meeting".meeting_at AS "_canon_time"
  FROM (
    SELECT
      lead_id,
      meeting_at
    FROM leads
    WHERE
      NOT meeting_at IS NULL
  ) AS "lead_meeting"
), q_0_converted AS (
  SELECT DISTINCT
    "b"."_canon_id"
  FROM q_0_base AS "b"
  INNER JOIN q_0_events AS "c"
    ON "b"."_canon_entity" = "c"."_canon_entity"
    AND "c"."_canon_time" >= "b"."_canon_time"
    AND "c"."_canon_time" <= (
      "b"."_canon_time" + INTERVAL 14 DAY
    )
), q_0 AS (
  SELECT
    "b"."campaign__channel" AS "campaign__channel",
    COUNT(DISTINCT "b"."_canon_id") AS "meeting_conversion_14d_base",
    COUNT(DISTINCT "v"."_canon_id") AS "meeting_conversion_14d_conversions"
  FROM q_0_base AS "b"
  LEFT JOIN q_0_converted AS "v"
    ON "b"."_canon_id" = "v"."_canon_id"
  GROUP BY
    "b"."campaign__channel"
)
SELECT
  "q_0"."campaign__channel" AS "campaign__channel",
  CAST("q_0"."meeting_conversion_14d_conversions" AS DOUBLE) / NULLIF("q_0"."meeting_conversion_14d_base", 0) AS "meeting_conversion_14d"
FROM q_0
ORDER BY
  "campaign__channel" ASC
