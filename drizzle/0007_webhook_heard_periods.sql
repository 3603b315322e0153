ALTER TABLE "webhook_endpoints" ADD COLUMN "heard_periods" "tstzmultirange" DEFAULT tstzmultirange(tstzrange(now(), null)) NOT NULL;--> statement-breakpoint
UPDATE "webhook_endpoints" SET "heard_periods" = CASE
  WHEN "enabled" THEN tstzmultirange(tstzrange("receives_since", null))
    + CASE WHEN "disabled_at" > "created_at" THEN tstzmultirange(tstzrange("created_at", "disabled_at")) ELSE tstzmultirange() END
  ELSE tstzmultirange(tstzrange("created_at", greatest("created_at", coalesce("disabled_at", "updated_at"))))
END;
